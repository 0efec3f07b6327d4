package mysql

import "strings"

// Progress is how far a server has come, as published in its member key: what it executed
// and what it received.
//
//   - Executed is exact. MariaDB: gtid_binlog_state merged with gtid_slave_pos, the last
//     transaction per replication domain *and originating server*. MySQL: gtid_executed.
//   - Received is what the replica IO thread fetched beyond that, applied or not. MariaDB:
//     Gtid_IO_Pos, one GTID per domain. MySQL: Retrieved_Gtid_Set. "" when not a replica.
type Progress struct {
	Executed string
	Received string
}

// Order is how one server's progress relates to another's.
type Order int

// Orders, read as "a is ... b".
const (
	Same    Order = iota // the same transactions received
	Further              // a has received every transaction b has, and more
	Behind               // b has received every transaction a has, and more
	Split                // each has transactions the other lacks (or they cannot be ordered)
)

func (o Order) String() string {
	return [...]string{"same", "further", "behind", "split"}[o]
}

// CompareProgress orders a against b. It never calls a split "further": a server that holds a
// transaction the other lacks is further along only if it also holds everything the other has.
//
// MariaDB, with gtid_strict_mode (histories are linear per domain):
//  1. The executed states are compared exactly, per domain and originating server: a state
//     contains another when, for each (domain, server) of the other, it has that server's
//     transaction with a sequence number at least as high. A shorter history of the same
//     line is always contained in a longer one; when neither contains the other, the
//     histories split, whatever the sequence numbers say (0-1-105 is not further than
//     0-1-100,0-2-103: server 2 wrote 101-103 where server 1 wrote 101-105).
//  2. When the executed states are ordered, the received positions decide, per domain: the
//     highest sequence number executed or fetched. Further in one domain and behind in
//     another cannot be ordered: Split.
//
// One case stays invisible without reading relay logs: transactions received (not yet
// executed) from a primary whose history split from the other's after both executed states.
// The primary's own refusal (error 1236) catches such a replica when it repoints.
//
// MySQL: GTID sets are exact; executed and received are united and compared as sets.
//
// Unparsable progress is Split: never a reason to promote.
func CompareProgress(f Flavor, a, b Progress) Order {
	if f == MySQL {
		return compareMySQL(a, b)
	}
	ae, err1 := ParseMariaDBGTIDSet(a.Executed)
	be, err2 := ParseMariaDBGTIDSet(b.Executed)
	ar, err3 := ParseMariaDBGTIDSet(a.Received)
	br, err4 := ParseMariaDBGTIDSet(b.Received)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		return Split
	}
	aHas, bHas := ae.holdsState(be), be.holdsState(ae)
	if !aHas && !bHas {
		return Split
	}
	further, behind := false, false
	for _, d := range domains(ae, be, ar, br) {
		x, y := reach(ae, ar, d), reach(be, br, d)
		switch {
		case x > y:
			further = true
		case x < y:
			behind = true
		}
	}
	switch {
	case further && behind:
		return Split
	case further:
		return Further
	case behind:
		return Behind
	}
	return Same
}

// holdsState: exact containment of binlog states, per domain and server (no position
// leniency: a state without an entry for a server lacks that server's transactions).
func (m MariaDBGTIDSet) holdsState(o MariaDBGTIDSet) bool {
	for _, g := range o.gtids {
		i, ok := m.find(g.Domain, g.Server)
		if !ok || m.gtids[i].Seq < g.Seq {
			return false
		}
	}
	return true
}

// reach is the highest sequence number executed or received in domain d.
func reach(executed, received MariaDBGTIDSet, d uint32) uint64 {
	var n uint64
	if g, ok := executed.last(d); ok {
		n = g.Seq
	}
	if g, ok := received.last(d); ok && g.Seq > n {
		n = g.Seq
	}
	return n
}

func domains(sets ...MariaDBGTIDSet) []uint32 {
	var ds []uint32
	seen := map[uint32]bool{}
	for _, s := range sets {
		for _, g := range s.gtids {
			if !seen[g.Domain] {
				seen[g.Domain] = true
				ds = append(ds, g.Domain)
			}
		}
	}
	return ds
}

func compareMySQL(a, b Progress) Order {
	x, err1 := mysqlUnion(a)
	y, err2 := mysqlUnion(b)
	if err1 != nil || err2 != nil {
		return Split
	}
	xc, yc := x.Contains(y), y.Contains(x)
	switch {
	case xc && yc:
		return Same
	case xc:
		return Further
	case yc:
		return Behind
	}
	return Split
}

// mysqlUnion parses executed and received as one set (a source named twice is merged).
func mysqlUnion(p Progress) (GTIDSet, error) {
	parts := make([]string, 0, 2)
	for _, s := range []string{p.Executed, p.Received} {
		if s = strings.TrimSpace(s); s != "" {
			parts = append(parts, s)
		}
	}
	return ParseGTIDSet(MySQL, strings.Join(parts, ","))
}
