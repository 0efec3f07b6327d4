//go:build proto

package main

import (
	"fmt"
	"io"
	"log"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"
	"os"

	"github.com/mysqlpilot/mysqlpilot/test/bench/lab"
)

func main() {
	s := Defaults
	if len(os.Args) > 1 && os.Args[1] == "seed" {
		s = Seed
	}
	_ = mysqldrv.SetLogger(log.New(io.Discard, "", 0))
	err := lab.Run("proto", os.Stderr, func(t *lab.TB) {
		r, err := NewRig(t, s, os.Stderr)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		go func() {
			for {
				for _, n := range r.C.Nodes {
					if _, err := os.Stat(n.LogPath); err != nil {
						fmt.Fprintf(os.Stderr, "%s WATCH: %v\n", time.Now().Format("15:04:05.000"), err)
					}
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
		for _, f := range []lab.Fault{lab.NetCut} {
			for i := 0; i < 6; i++ {
				run := r.Once(f)
				fmt.Printf("%+v\n", run)
			}
		}
	})
	fmt.Println("err:", err)
}
