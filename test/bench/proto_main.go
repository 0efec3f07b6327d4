//go:build proto

package main

import (
	"fmt"
	"os"

	"github.com/mysqlpilot/mysqlpilot/test/bench/lab"
)

func main() {
	s := Defaults
	if len(os.Args) > 1 && os.Args[1] == "seed" {
		s = Seed
	}
	err := lab.Run("proto", os.Stderr, func(t *lab.TB) {
		r, err := NewRig(t, s, os.Stderr)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		for _, f := range lab.Faults {
			for i := 0; i < 2; i++ {
				run := r.Once(f)
				fmt.Printf("%+v\n", run)
			}
		}
	})
	fmt.Println("err:", err)
}
