package mysql

import (
	"errors"
	"math"
	"testing"
)

const (
	uuidA = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
	uuidB = "4f22fb58-82db-22f2-8f44-d91bb9530673"
)

func mustSet(t *testing.T, f Flavor, s string) GTIDSet {
	t.Helper()
	g, err := ParseGTIDSet(f, s)
	if err != nil {
		t.Fatalf("ParseGTIDSet(%s, %q): %v", f, s, err)
	}
	return g
}

func TestParseMariaDBGTIDSet(t *testing.T) {
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{name: "empty", in: "", want: ""},
		{name: "blank", in: "  \n", want: ""},
		{name: "one domain", in: "0-1-5", want: "0-1-5"},
		{name: "domains sorted", in: "1-2-7,0-1-5", want: "0-1-5,1-2-7"},
		{name: "spaces around entries", in: " 0-1-5 , 1-2-7 ", want: "0-1-5,1-2-7"},
		{name: "binlog state keeps each server", in: "0-2-9,0-1-5,0-3-7", want: "0-1-5,0-2-9,0-3-7"},
		{name: "repeated server keeps highest seq", in: "0-1-5,0-1-9,0-1-7", want: "0-1-9"},
		{name: "max values", in: "4294967295-4294967295-18446744073709551615", want: "4294967295-4294967295-18446744073709551615"},
		{name: "seq zero", in: "0-1-0", want: "0-1-0"},
		{name: "two fields", in: "0-1", wantErr: true},
		{name: "four fields", in: "0-1-2-3", wantErr: true},
		{name: "domain overflow", in: "4294967296-1-1", wantErr: true},
		{name: "negative", in: "0--1-5", wantErr: true},
		{name: "plus sign", in: "+0-1-5", wantErr: true},
		{name: "empty entry", in: "0-1-5,", wantErr: true},
		{name: "hex", in: "0x1-1-5", wantErr: true},
		{name: "mysql set", in: uuidA + ":1-5", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseMariaDBGTIDSet(tc.in)
			if tc.wantErr {
				if !errors.Is(err, ErrBadGTID) {
					t.Fatalf("ParseMariaDBGTIDSet(%q) = %v, %v; want ErrBadGTID", tc.in, got, err)
				}
				return
			}
			if err != nil || got.String() != tc.want {
				t.Fatalf("ParseMariaDBGTIDSet(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestParseMySQLGTIDSet(t *testing.T) {
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{name: "empty", in: "", want: ""},
		{name: "one interval", in: uuidA + ":1-5", want: uuidA + ":1-5"},
		{name: "single transaction", in: uuidA + ":7", want: uuidA + ":7"},
		{name: "intervals merge and sort", in: uuidA + ":7-9:1-5:6", want: uuidA + ":1-9"},
		{name: "overlap merges", in: uuidA + ":1-5:3-8", want: uuidA + ":1-8"},
		{name: "gap stays", in: uuidA + ":1-5:7-9", want: uuidA + ":1-5:7-9"},
		{name: "uuids sorted, upper case folded", in: "4F22FB58-82DB-22F2-8F44-D91BB9530673:1-3," + uuidA + ":1-5",
			want: uuidA + ":1-5," + uuidB + ":1-3"},
		{name: "as printed with newlines", in: uuidA + ":1-5,\n" + uuidB + ":1-3", want: uuidA + ":1-5," + uuidB + ":1-3"},
		{name: "same uuid twice", in: uuidA + ":1-3," + uuidA + ":4-6", want: uuidA + ":1-6"},
		{name: "tagged", in: uuidA + ":1-5:Blue:1-3", want: uuidA + ":1-5:blue:1-3"},
		{name: "tag only", in: uuidA + ":red:2", want: uuidA + ":red:2"},
		{name: "max gno", in: uuidA + ":1-9223372036854775807", want: uuidA + ":1-9223372036854775807"},
		{name: "zero gno", in: uuidA + ":0-5", wantErr: true},
		{name: "reversed interval", in: uuidA + ":5-1", wantErr: true},
		{name: "gno too big", in: uuidA + ":1-9223372036854775808", wantErr: true},
		{name: "no intervals", in: uuidA, wantErr: true},
		{name: "empty interval", in: uuidA + ":", wantErr: true},
		{name: "short uuid", in: "3e11fa47-71ca-11e1-9e33:1-5", wantErr: true},
		{name: "uuid bad hex", in: "3e11fa47-71ca-11e1-9e33-c80aa942956z:1", wantErr: true},
		{name: "tag without intervals", in: uuidA + ":1-5:blue", wantErr: true},
		{name: "two tags in a row", in: uuidA + ":blue:red:1", wantErr: true},
		{name: "tag too long", in: uuidA + ":" + "abcdefghijabcdefghijabcdefghijabc:1", wantErr: true},
		{name: "mariadb pos", in: "0-1-5", wantErr: true},
		{name: "trailing comma", in: uuidA + ":1,", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseMySQLGTIDSet(tc.in)
			if tc.wantErr {
				if !errors.Is(err, ErrBadGTID) {
					t.Fatalf("ParseMySQLGTIDSet(%q) = %v, %v; want ErrBadGTID", tc.in, got, err)
				}
				return
			}
			if err != nil || got.String() != tc.want {
				t.Fatalf("ParseMySQLGTIDSet(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestGTIDSetRelations(t *testing.T) {
	tests := []struct {
		name       string
		flavor     Flavor
		a, b       string
		contains   bool   // a ⊇ b
		equal      bool   // a = b
		aMinusB    string // errant transactions of a relative to b
		ahead      uint64
		bContainsA bool
	}{
		{name: "mariadb equal", flavor: MariaDB, a: "0-1-5", b: "0-1-5",
			contains: true, equal: true, aMinusB: "", ahead: 0, bContainsA: true},
		{name: "mariadb ahead in one domain", flavor: MariaDB, a: "0-1-9,1-2-3", b: "0-1-5,1-2-3",
			contains: true, aMinusB: "0-1-9", ahead: 4},
		{name: "mariadb behind", flavor: MariaDB, a: "0-1-5", b: "0-1-9",
			contains: false, aMinusB: "", ahead: 0, bContainsA: true},
		{name: "mariadb extra domain", flavor: MariaDB, a: "0-1-5,2-3-4", b: "0-1-5",
			contains: true, aMinusB: "2-3-4", ahead: 4},
		{name: "mariadb newer primary's server id", flavor: MariaDB, a: "0-2-12", b: "0-1-10",
			contains: true, aMinusB: "0-2-12", ahead: 2},
		{name: "mariadb diverged at the same seq", flavor: MariaDB, a: "0-1-10", b: "0-2-10",
			contains: false, aMinusB: "0-1-10", ahead: 1},
		{name: "mariadb old primary's unreplicated write", flavor: MariaDB, a: "0-1-12", b: "0-1-11,0-2-14",
			contains: false, aMinusB: "0-1-12", ahead: 1},
		{name: "mariadb old primary caught up", flavor: MariaDB, a: "0-1-11,0-2-14", b: "0-1-11,0-2-14",
			contains: true, equal: true, bContainsA: true},
		{name: "mariadb binlog state and position of one history", flavor: MariaDB, a: "0-1-11,0-2-14", b: "0-2-14",
			contains: true, equal: true, bContainsA: true},
		{name: "mariadb restored node without the old server's entry", flavor: MariaDB, a: "0-2-20", b: "0-1-10",
			contains: true, aMinusB: "0-2-20", ahead: 10},
		{name: "mariadb both ahead somewhere", flavor: MariaDB, a: "0-1-10,1-1-1", b: "0-1-12",
			contains: false, aMinusB: "1-1-1", ahead: 1},
		{name: "mariadb empty b", flavor: MariaDB, a: "0-1-3", b: "",
			contains: true, aMinusB: "0-1-3", ahead: 3},
		{name: "mariadb both empty", flavor: MariaDB, a: "", b: "",
			contains: true, equal: true, bContainsA: true},

		{name: "mysql equal", flavor: MySQL, a: uuidA + ":1-5", b: uuidA + ":1-5",
			contains: true, equal: true, bContainsA: true},
		{name: "mysql superset", flavor: MySQL, a: uuidA + ":1-10", b: uuidA + ":1-5",
			contains: true, aMinusB: uuidA + ":6-10", ahead: 5},
		{name: "mysql errant on other uuid", flavor: MySQL, a: uuidA + ":1-10," + uuidB + ":1-2", b: uuidA + ":1-12",
			contains: false, aMinusB: uuidB + ":1-2", ahead: 2},
		{name: "mysql hole in b", flavor: MySQL, a: uuidA + ":1-10", b: uuidA + ":1-3:5-10",
			contains: true, aMinusB: uuidA + ":4", ahead: 1},
		{name: "mysql hole in a", flavor: MySQL, a: uuidA + ":1-3:5-10", b: uuidA + ":1-10",
			contains: false, aMinusB: "", ahead: 0, bContainsA: true},
		{name: "mysql punch several holes", flavor: MySQL, a: uuidA + ":1-20", b: uuidA + ":2-3:5:10-12:20",
			contains: true, aMinusB: uuidA + ":1:4:6-9:13-19", ahead: 13},
		{name: "mysql tags are separate", flavor: MySQL, a: uuidA + ":1-5:blue:1-2", b: uuidA + ":1-5",
			contains: true, aMinusB: uuidA + ":blue:1-2", ahead: 2},
		{name: "mysql empty", flavor: MySQL, a: "", b: uuidA + ":1",
			contains: false, aMinusB: "", ahead: 0, bContainsA: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := mustSet(t, tc.flavor, tc.a), mustSet(t, tc.flavor, tc.b)
			if got := a.Contains(b); got != tc.contains {
				t.Errorf("%q.Contains(%q) = %t, want %t", tc.a, tc.b, got, tc.contains)
			}
			if got := b.Contains(a); got != tc.bContainsA {
				t.Errorf("%q.Contains(%q) = %t, want %t", tc.b, tc.a, got, tc.bContainsA)
			}
			if got := a.Equal(b); got != tc.equal {
				t.Errorf("%q.Equal(%q) = %t, want %t", tc.a, tc.b, got, tc.equal)
			}
			if got := a.Subtract(b).String(); got != tc.aMinusB {
				t.Errorf("%q.Subtract(%q) = %q, want %q", tc.a, tc.b, got, tc.aMinusB)
			}
			if got := a.Ahead(b); got != tc.ahead {
				t.Errorf("%q.Ahead(%q) = %d, want %d", tc.a, tc.b, got, tc.ahead)
			}
		})
	}
}

func TestGTIDSetMixedFlavors(t *testing.T) {
	m := mustSet(t, MariaDB, "0-1-5")
	y := mustSet(t, MySQL, uuidA+":1-5")
	if m.Contains(y) || y.Contains(m) || m.Equal(y) {
		t.Error("sets of different flavors compare as related")
	}
	if !m.Contains(EmptyGTIDSet(MySQL)) || !EmptyGTIDSet(MariaDB).Equal(EmptyGTIDSet(MySQL)) {
		t.Error("empty sets of any flavor should be contained and equal")
	}
	if got := y.Subtract(m).String(); got != y.String() {
		t.Errorf("Subtract across flavors = %q, want the receiver", got)
	}
	if got := y.Ahead(m); got != 5 {
		t.Errorf("Ahead across flavors = %d, want 5", got)
	}
}

func TestGTIDAheadSaturates(t *testing.T) {
	a := mustSet(t, MySQL, uuidA+":1-9223372036854775807,"+uuidB+":1-9223372036854775807,3e11fa47-71ca-11e1-9e33-c80aa9429563:1-9")
	if got := a.Ahead(EmptyGTIDSet(MySQL)); got != math.MaxUint64 {
		t.Errorf("Ahead = %d, want saturation at MaxUint64", got)
	}
	m := mustSet(t, MariaDB, "0-1-18446744073709551615,1-1-18446744073709551615")
	if got := m.Ahead(EmptyGTIDSet(MariaDB)); got != math.MaxUint64 {
		t.Errorf("MariaDB Ahead = %d, want saturation", got)
	}
}

func TestParseGTIDSetUnknownFlavor(t *testing.T) {
	if _, err := ParseGTIDSet("oracle", "x"); err == nil {
		t.Fatal("no error for an unknown flavor")
	}
}

// checkParsedSet checks the invariants every parsed set must keep.
func checkParsedSet(t *testing.T, f Flavor, in string, g GTIDSet) {
	t.Helper()
	again, err := ParseGTIDSet(f, g.String())
	if err != nil {
		t.Fatalf("%q parsed to %q, which does not parse: %v", in, g, err)
	}
	if !again.Equal(g) || again.String() != g.String() {
		t.Fatalf("%q: round trip %q -> %q", in, g, again)
	}
	if !g.Contains(g) || !g.Subtract(g).IsEmpty() || g.Ahead(g) != 0 {
		t.Fatalf("%q: set is not a superset of itself or leaves errant transactions against itself", in)
	}
	if !g.Contains(EmptyGTIDSet(f)) {
		t.Fatalf("%q: does not contain the empty set", in)
	}
	if d := g.Subtract(EmptyGTIDSet(f)); !d.Equal(g) {
		t.Fatalf("%q: minus empty = %q", in, d)
	}
}

func FuzzParseMariaDBGTIDSet(f *testing.F) {
	for _, s := range []string{"", "0-1-5", "0-1-5,1-2-7", " 0-1-5 , 0-2-9", "4294967295-1-18446744073709551615", "0-1", "a-b-c", "0-1-5,,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		g, err := ParseMariaDBGTIDSet(s)
		if err != nil {
			return
		}
		checkParsedSet(t, MariaDB, s, g)
	})
}

func FuzzParseMySQLGTIDSet(f *testing.F) {
	for _, s := range []string{"", uuidA + ":1-5", uuidA + ":1-5:7-9,\n" + uuidB + ":1-3", uuidA + ":1-5:blue:3",
		uuidA + ":9223372036854775807", uuidA + ":0", uuidA + ":blue", "x:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		g, err := ParseMySQLGTIDSet(s)
		if err != nil {
			return
		}
		checkParsedSet(t, MySQL, s, g)
	})
}

// FuzzMySQLSubtract checks set algebra on pairs: (a - b) has nothing of b, a contains it, and
// (a - b) + (a ∩ b) counts like a.
func FuzzMySQLSubtract(f *testing.F) {
	f.Add(uuidA+":1-20", uuidA+":2-3:5:10-12:20")
	f.Add(uuidA+":1-5,"+uuidB+":1-3", uuidB+":2")
	f.Fuzz(func(t *testing.T, sa, sb string) {
		a, err1 := ParseMySQLGTIDSet(sa)
		b, err2 := ParseMySQLGTIDSet(sb)
		if err1 != nil || err2 != nil {
			return
		}
		d := a.Subtract(b).(MySQLGTIDSet)
		if !a.Contains(d) {
			t.Fatalf("%q - %q = %q is not within a", sa, sb, d)
		}
		if !d.Subtract(d.Subtract(b)).IsEmpty() {
			t.Fatalf("%q - %q = %q still shares transactions with b", sa, sb, d)
		}
		common := a.Subtract(d).(MySQLGTIDSet)
		if a.Count() != math.MaxUint64 && d.Count()+common.Count() != a.Count() {
			t.Fatalf("counts: |a-b| %d + |a∩b| %d != |a| %d", d.Count(), common.Count(), a.Count())
		}
		if b.Contains(common) != true {
			t.Fatalf("a∩b %q not within b %q", common, sb)
		}
	})
}

// FuzzMariaDBRelations checks that Subtract, Contains and Equal agree on pairs.
func FuzzMariaDBRelations(f *testing.F) {
	f.Add("0-1-12", "0-1-11,0-2-14")
	f.Add("0-1-10,1-1-1", "0-1-12")
	f.Add("0-2-20", "0-1-10")
	f.Fuzz(func(t *testing.T, sa, sb string) {
		a, err1 := ParseMariaDBGTIDSet(sa)
		b, err2 := ParseMariaDBGTIDSet(sb)
		if err1 != nil || err2 != nil {
			return
		}
		d := a.Subtract(b)
		if b.Contains(a) != d.IsEmpty() {
			t.Fatalf("%q ⊇ %q is %t but the difference is %q", sb, sa, b.Contains(a), d)
		}
		if !a.Contains(d) {
			t.Fatalf("%q - %q = %q is not within a", sa, sb, d)
		}
		if a.Equal(b) != (a.Contains(b) && b.Contains(a)) || a.Equal(b) != b.Equal(a) {
			t.Fatalf("Equal(%q, %q) disagrees with Contains", sa, sb)
		}
		if !a.Contains(a.Position()) {
			t.Fatalf("%q does not contain its own position %q", sa, a.Position())
		}
	})
}
