package mysql

import "testing"

func TestCompareProgressMariaDB(t *testing.T) {
	cases := []struct {
		name string
		a, b Progress
		want Order
	}{
		{"same position", Progress{Executed: "0-1-100"}, Progress{Executed: "0-1-100"}, Same},
		{"longer line of the same history", Progress{Executed: "0-1-100,0-2-150"}, Progress{Executed: "0-1-100"}, Further},
		{"shorter line of the same history", Progress{Executed: "0-1-90"}, Progress{Executed: "0-1-100,0-2-150"}, Behind},
		// The cases: a higher sequence number is not further when the histories split.
		{"higher sequence written by another server is a split",
			Progress{Executed: "0-1-105"}, Progress{Executed: "0-1-100,0-2-103"}, Split},
		{"the same, seen from the other side",
			Progress{Executed: "0-1-100,0-2-103"}, Progress{Executed: "0-1-105"}, Split},
		{"two servers wrote after the same point",
			Progress{Executed: "0-1-100,0-3-151"}, Progress{Executed: "0-1-100,0-2-150"}, Split},
		{"received but not yet applied counts",
			Progress{Executed: "0-1-100", Received: "0-2-160"}, Progress{Executed: "0-1-100,0-2-150"}, Further},
		{"received as much as the other executed",
			Progress{Executed: "0-1-100", Received: "0-2-150"}, Progress{Executed: "0-1-100,0-2-150"}, Same},
		{"applied more, received the same",
			Progress{Executed: "0-1-100,0-2-150", Received: "0-2-150"}, Progress{Executed: "0-1-100,0-2-120", Received: "0-2-150"}, Same},
		{"multi-domain, further in both",
			Progress{Executed: "0-1-10,1-1-20"}, Progress{Executed: "0-1-9,1-1-20"}, Further},
		{"multi-domain, a domain the other lacks",
			Progress{Executed: "0-1-10,1-1-20"}, Progress{Executed: "0-1-10"}, Further},
		{"multi-domain, further in one and behind in the other cannot be ordered",
			Progress{Executed: "0-1-10", Received: "1-1-25"}, Progress{Executed: "0-1-12,1-1-20"}, Split},
		{"multi-domain split in one domain",
			Progress{Executed: "0-1-10,1-2-30"}, Progress{Executed: "0-1-10,1-3-30"}, Split},
		// Has a replica received a primary's whole state (the handover's and alone's check)?
		{"fetched the primary's last transaction: received its state",
			Progress{Executed: "0-1-100", Received: "0-2-150"}, Progress{Executed: "0-1-100,0-2-150"}, Same},
		{"one transaction short: not received",
			Progress{Executed: "0-1-100", Received: "0-2-149"}, Progress{Executed: "0-1-100,0-2-150"}, Behind},
		{"empty is behind anything", Progress{}, Progress{Executed: "0-1-1"}, Behind},
		{"both empty", Progress{}, Progress{}, Same},
		{"unparsable is a split, never further", Progress{Executed: "garbage"}, Progress{Executed: "0-1-1"}, Split},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := CompareProgress(MariaDB, c.a, c.b); got != c.want {
				t.Fatalf("CompareProgress(%+v, %+v) = %s, want %s", c.a, c.b, got, c.want)
			}
		})
	}
}

func TestCompareProgressMySQL(t *testing.T) {
	const u1, u2 = "3e11fa47-71ca-11e1-9e33-c80aa9429562", "4e11fa47-71ca-11e1-9e33-c80aa9429562"
	cases := []struct {
		name string
		a, b Progress
		want Order
	}{
		{"same", Progress{Executed: u1 + ":1-5"}, Progress{Executed: u1 + ":1-5"}, Same},
		{"received counts", Progress{Executed: u1 + ":1-5", Received: u1 + ":1-9"}, Progress{Executed: u1 + ":1-7"}, Further},
		{"errant transaction", Progress{Executed: u1 + ":1-5," + u2 + ":1"}, Progress{Executed: u1 + ":1-7"}, Split},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := CompareProgress(MySQL, c.a, c.b); got != c.want {
				t.Fatalf("CompareProgress(%+v, %+v) = %s, want %s", c.a, c.b, got, c.want)
			}
		})
	}
}
