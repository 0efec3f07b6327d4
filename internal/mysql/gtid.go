package mysql

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// GTIDSet is the set of transactions a server has, in its flavor's notation: MariaDB GTIDs
// ("0-1-5,0-2-7": per replication domain and originating server, the last transaction; see
// MariaDBGTIDSet) or a MySQL GTID set ("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7-9,...").
// Values are immutable.
//
// Sets of different flavors are unrelated: Contains is false (unless the argument is empty),
// Equal is false, Subtract returns the receiver and Ahead counts all of the receiver.
type GTIDSet interface {
	// Flavor is the notation the set was parsed from.
	Flavor() Flavor
	// String formats the set in its flavor's canonical notation; parsing it gives an equal set.
	String() string
	// IsEmpty reports a set without transactions.
	IsEmpty() bool
	// Contains reports whether the receiver has every transaction of other (a superset).
	Contains(other GTIDSet) bool
	// Equal reports whether both sets have the same transactions.
	Equal(other GTIDSet) bool
	// Subtract returns the transactions the receiver has and other lacks: with other being a
	// primary's set, the receiver's errant transactions.
	Subtract(other GTIDSet) GTIDSet
	// Ahead counts the transactions the receiver has and other lacks, for ranking candidates.
	// It saturates at math.MaxUint64.
	Ahead(other GTIDSet) uint64
}

// ErrBadGTID is wrapped by every GTID parse error.
var ErrBadGTID = errors.New("malformed GTID")

// ParseGTIDSet parses s in the flavor's notation. The empty string is the empty set.
func ParseGTIDSet(f Flavor, s string) (GTIDSet, error) {
	switch f {
	case MariaDB:
		return ParseMariaDBGTIDSet(s)
	case MySQL:
		return ParseMySQLGTIDSet(s)
	default:
		return nil, fmt.Errorf("mysql: parse GTID set: %w", f.Validate())
	}
}

// EmptyGTIDSet returns the flavor's empty set.
func EmptyGTIDSet(f Flavor) GTIDSet {
	if f == MySQL {
		return MySQLGTIDSet{}
	}
	return MariaDBGTIDSet{}
}

// ---------------------------------------------------------------------------------------------
// MariaDB

// MariaDBGTID is one MariaDB global transaction id, domain-server-seq.
type MariaDBGTID struct {
	Domain uint32
	Server uint32
	Seq    uint64
}

func (g MariaDBGTID) String() string {
	return strconv.FormatUint(uint64(g.Domain), 10) + "-" + strconv.FormatUint(uint64(g.Server), 10) +
		"-" + strconv.FormatUint(g.Seq, 10)
}

// MariaDBGTIDSet is what a MariaDB server has, as the last transaction per replication domain
// and originating server. It holds a GTID position (@@gtid_slave_pos, Gtid_IO_Pos: one entry
// per domain) or a binlog state (@@gtid_binlog_state: one entry per domain and server);
// DB.GTIDState merges the binlog state with gtid_slave_pos.
//
// With gtid_strict_mode, histories are linear per domain and sequence numbers grow by one per
// transaction, so the entries tell which transactions a server has:
//   - progress in a domain is its highest sequence number;
//   - b lacks a's last transaction from server s when b's own entry for s is lower, or when
//     b has no entry for s and its domain stops below (or at the same number written by
//     another server). This is how a returning primary's unreplicated writes show up: the new
//     primary's binlog state holds that server's older last transaction.
//
// When b has no entry for s and is further along, a's entry counts as contained: a position
// (one entry per domain) cannot tell. Compare binlog states to find errant transactions; the
// primary's own check (error 1236 when a replica asks for a GTID its binlog lacks) backs this.
type MariaDBGTIDSet struct {
	gtids []MariaDBGTID // sorted by (Domain, Server), one per pair
}

// ParseMariaDBGTIDSet parses "0-1-5,1-2-7" (a position) or "0-1-11,0-2-14" (a binlog state).
// Spaces around entries are ignored; for a repeated domain and server the highest sequence
// number wins.
func ParseMariaDBGTIDSet(s string) (MariaDBGTIDSet, error) {
	var set MariaDBGTIDSet
	s = strings.TrimSpace(s)
	if s == "" {
		return set, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		g, err := parseMariaDBGTID(strings.TrimSpace(part))
		if err != nil {
			return MariaDBGTIDSet{}, fmt.Errorf("mysql: parse MariaDB GTIDs %q: %w", truncate(s, 200), err)
		}
		i, found := set.find(g.Domain, g.Server)
		switch {
		case !found:
			set.gtids = slices.Insert(set.gtids, i, g)
		case g.Seq > set.gtids[i].Seq:
			set.gtids[i] = g
		}
	}
	return set, nil
}

func parseMariaDBGTID(s string) (MariaDBGTID, error) {
	f := strings.Split(s, "-")
	if len(f) != 3 {
		return MariaDBGTID{}, fmt.Errorf("%w: %q is not domain-server-seq", ErrBadGTID, truncate(s, 64))
	}
	d, err1 := parseDecimal(f[0], 32)
	sv, err2 := parseDecimal(f[1], 32)
	q, err3 := parseDecimal(f[2], 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return MariaDBGTID{}, fmt.Errorf("%w: %q: numbers out of range or not decimal", ErrBadGTID, truncate(s, 64))
	}
	return MariaDBGTID{Domain: uint32(d), Server: uint32(sv), Seq: q}, nil
}

// parseDecimal accepts plain decimal digits only (no sign, no spaces).
func parseDecimal(s string, bits int) (uint64, error) {
	if s == "" || strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return 0, ErrBadGTID
	}
	return strconv.ParseUint(s, 10, bits)
}

func (m MariaDBGTIDSet) find(domain, server uint32) (int, bool) {
	return slices.BinarySearchFunc(m.gtids, [2]uint32{domain, server}, func(g MariaDBGTID, k [2]uint32) int {
		switch {
		case g.Domain != k[0]:
			return cmpUint(g.Domain, k[0])
		default:
			return cmpUint(g.Server, k[1])
		}
	})
}

func cmpUint(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// last returns the domain's entry with the highest sequence number.
func (m MariaDBGTIDSet) last(domain uint32) (MariaDBGTID, bool) {
	var best MariaDBGTID
	found := false
	for _, g := range m.gtids {
		if g.Domain == domain && (!found || g.Seq > best.Seq) {
			best, found = g, true
		}
	}
	return best, found
}

// GTIDs returns the entries sorted by domain and server.
func (m MariaDBGTIDSet) GTIDs() []MariaDBGTID { return slices.Clone(m.gtids) }

// Position returns the GTID position: per domain, the entry with the highest sequence number.
// This is what gtid_slave_pos and MASTER_GTID_WAIT take.
func (m MariaDBGTIDSet) Position() MariaDBGTIDSet {
	var p MariaDBGTIDSet
	for _, g := range m.gtids {
		if n := len(p.gtids); n > 0 && p.gtids[n-1].Domain == g.Domain {
			if g.Seq > p.gtids[n-1].Seq {
				p.gtids[n-1] = g
			}
			continue
		}
		p.gtids = append(p.gtids, g)
	}
	return p
}

// Flavor implements GTIDSet.
func (MariaDBGTIDSet) Flavor() Flavor { return MariaDB }

// IsEmpty implements GTIDSet.
func (m MariaDBGTIDSet) IsEmpty() bool { return len(m.gtids) == 0 }

// String implements GTIDSet: entries sorted by domain and server.
func (m MariaDBGTIDSet) String() string {
	var b strings.Builder
	for i, g := range m.gtids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(g.String())
	}
	return b.String()
}

// lacks reports whether m (as far as its entries tell) lacks transaction g.
func (m MariaDBGTIDSet) lacks(g MariaDBGTID) bool {
	if i, ok := m.find(g.Domain, g.Server); ok {
		return m.gtids[i].Seq < g.Seq
	}
	top, ok := m.last(g.Domain)
	if !ok || top.Seq < g.Seq {
		return true
	}
	// Same sequence number written by another server: the histories split there.
	for _, o := range m.gtids {
		if o.Domain == g.Domain && o.Seq == g.Seq {
			return true
		}
	}
	return false
}

// Contains implements GTIDSet: m lacks none of other's entries.
func (m MariaDBGTIDSet) Contains(other GTIDSet) bool {
	o, ok := other.(MariaDBGTIDSet)
	if !ok {
		return other.IsEmpty()
	}
	for _, g := range o.gtids {
		if m.lacks(g) {
			return false
		}
	}
	return true
}

// Equal implements GTIDSet: each contains the other. A position and a binlog state of the
// same history are equal.
func (m MariaDBGTIDSet) Equal(other GTIDSet) bool {
	o, ok := other.(MariaDBGTIDSet)
	if !ok {
		return m.IsEmpty() && other.IsEmpty()
	}
	return m.Contains(o) && o.Contains(m)
}

// Subtract implements GTIDSet: m's entries that other lacks.
func (m MariaDBGTIDSet) Subtract(other GTIDSet) GTIDSet {
	o, ok := other.(MariaDBGTIDSet)
	if !ok {
		return m
	}
	var r MariaDBGTIDSet
	for _, g := range m.gtids {
		if o.lacks(g) {
			r.gtids = append(r.gtids, g)
		}
	}
	return r
}

// Ahead implements GTIDSet as an estimate for ranking: per domain, how far m's highest
// sequence number is past other's, and one for a domain where m is not further along but has
// transactions other lacks (a divergence). Exact when the histories agree.
func (m MariaDBGTIDSet) Ahead(other GTIDSet) uint64 {
	o, ok := other.(MariaDBGTIDSet)
	if !ok {
		o = MariaDBGTIDSet{}
	}
	var n uint64
	for _, g := range m.Position().gtids {
		top, found := o.last(g.Domain)
		switch {
		case !found:
			n = addSat(n, g.Seq)
		case g.Seq > top.Seq:
			n = addSat(n, g.Seq-top.Seq)
		default:
			for _, e := range m.gtids {
				if e.Domain == g.Domain && o.lacks(e) {
					n = addSat(n, 1)
					break
				}
			}
		}
	}
	return n
}

// ---------------------------------------------------------------------------------------------
// MySQL

// maxGNO is the highest transaction number MySQL accepts (2^63-1).
const maxGNO = math.MaxInt64

// GTIDInterval is a closed range of transaction numbers, Start <= End.
type GTIDInterval struct{ Start, End uint64 }

// mysqlSource is one source id (server UUID, optionally with a MySQL 8.3+ tag) and its intervals.
type mysqlSource struct {
	uuid      string // lowercase, canonical 8-4-4-4-12 form
	tag       string // "" or a lowercase tag
	intervals []GTIDInterval
}

func (s mysqlSource) key() string { return s.uuid + ":" + s.tag }

// MySQLGTIDSet is a MySQL GTID set such as @@gtid_executed: for each source UUID (and tag),
// a set of transaction-number intervals.
type MySQLGTIDSet struct {
	sources []mysqlSource // sorted by (uuid, tag); intervals sorted, merged, non-empty
}

// ParseMySQLGTIDSet parses "uuid:1-5:7-9,uuid2:1-3" as MySQL prints it (newlines after commas
// included) and the tagged form of MySQL 8.3+ ("uuid:1-5:tag:1-3"). UUIDs and tags are
// case-insensitive; overlapping intervals merge.
func ParseMySQLGTIDSet(s string) (MySQLGTIDSet, error) {
	var set MySQLGTIDSet
	s = strings.TrimSpace(s)
	if s == "" {
		return set, nil
	}
	bySource := map[string]*mysqlSource{}
	for part := range strings.SplitSeq(s, ",") {
		if err := parseMySQLUUIDSet(strings.TrimSpace(part), bySource); err != nil {
			return MySQLGTIDSet{}, fmt.Errorf("mysql: parse MySQL GTID set %q: %w", truncate(s, 200), err)
		}
	}
	for _, src := range bySource {
		src.intervals = normalizeIntervals(src.intervals)
		set.sources = append(set.sources, *src)
	}
	sortSources(set.sources)
	return set, nil
}

func parseMySQLUUIDSet(s string, into map[string]*mysqlSource) error {
	f := strings.Split(s, ":")
	if len(f) < 2 {
		return fmt.Errorf("%w: %q has no intervals", ErrBadGTID, truncate(s, 80))
	}
	uuid, err := canonicalUUID(strings.TrimSpace(f[0]))
	if err != nil {
		return err
	}
	tag := ""
	pendingTag := false // a tag was named and no interval followed yet
	for _, c := range f[1:] {
		c = strings.TrimSpace(c)
		if c != "" && isTagStart(c[0]) {
			if pendingTag {
				return fmt.Errorf("%w: tag %q without intervals in %q", ErrBadGTID, truncate(tag, 40), truncate(s, 80))
			}
			t, err := canonicalTag(c)
			if err != nil {
				return err
			}
			tag, pendingTag = t, true
			continue
		}
		iv, err := parseInterval(c)
		if err != nil {
			return err
		}
		src := into[uuid+":"+tag]
		if src == nil {
			src = &mysqlSource{uuid: uuid, tag: tag}
			into[src.key()] = src
		}
		src.intervals = append(src.intervals, iv)
		pendingTag = false
	}
	if pendingTag {
		return fmt.Errorf("%w: %q ends without intervals", ErrBadGTID, truncate(s, 80))
	}
	return nil
}

func isTagStart(c byte) bool { return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

func canonicalTag(s string) (string, error) {
	t := strings.ToLower(s)
	if len(t) > 32 {
		return "", fmt.Errorf("%w: tag %q longer than 32 characters", ErrBadGTID, truncate(s, 40))
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c == '_' || (c >= 'a' && c <= 'z') || (i > 0 && c >= '0' && c <= '9')) {
			return "", fmt.Errorf("%w: tag %q", ErrBadGTID, truncate(s, 40))
		}
	}
	return t, nil
}

// canonicalUUID accepts 8-4-4-4-12 hex digits (any case) and returns them in lowercase.
func canonicalUUID(s string) (string, error) {
	if len(s) != 36 {
		return "", fmt.Errorf("%w: %q is not a UUID", ErrBadGTID, truncate(s, 40))
	}
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return "", fmt.Errorf("%w: %q is not a UUID", ErrBadGTID, s)
			}
			continue
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", fmt.Errorf("%w: %q is not a UUID", ErrBadGTID, s)
		}
	}
	return string(b), nil
}

func parseInterval(s string) (GTIDInterval, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := parseDecimal(lo, 64)
	if err != nil || a == 0 || a > maxGNO {
		return GTIDInterval{}, fmt.Errorf("%w: interval %q", ErrBadGTID, truncate(s, 48))
	}
	b := a
	if isRange {
		b, err = parseDecimal(hi, 64)
		if err != nil || b < a || b > maxGNO {
			return GTIDInterval{}, fmt.Errorf("%w: interval %q", ErrBadGTID, truncate(s, 48))
		}
	}
	return GTIDInterval{Start: a, End: b}, nil
}

// normalizeIntervals sorts and merges overlapping and adjacent intervals.
func normalizeIntervals(in []GTIDInterval) []GTIDInterval {
	if len(in) == 0 {
		return nil
	}
	iv := slices.Clone(in)
	slices.SortFunc(iv, func(a, b GTIDInterval) int {
		switch {
		case a.Start < b.Start:
			return -1
		case a.Start > b.Start:
			return 1
		}
		return 0
	})
	out := iv[:1]
	for _, x := range iv[1:] {
		last := &out[len(out)-1]
		if x.Start <= last.End || x.Start-1 == last.End {
			last.End = max(last.End, x.End)
			continue
		}
		out = append(out, x)
	}
	return out
}

func sortSources(s []mysqlSource) {
	slices.SortFunc(s, func(a, b mysqlSource) int {
		if c := strings.Compare(a.uuid, b.uuid); c != 0 {
			return c
		}
		return strings.Compare(a.tag, b.tag)
	})
}

func (m MySQLGTIDSet) source(uuid, tag string) []GTIDInterval {
	i, ok := slices.BinarySearchFunc(m.sources, [2]string{uuid, tag}, func(s mysqlSource, k [2]string) int {
		if c := strings.Compare(s.uuid, k[0]); c != 0 {
			return c
		}
		return strings.Compare(s.tag, k[1])
	})
	if !ok {
		return nil
	}
	return m.sources[i].intervals
}

// Intervals returns the intervals of one source UUID (tag "" for untagged transactions).
func (m MySQLGTIDSet) Intervals(uuid, tag string) []GTIDInterval {
	return slices.Clone(m.source(strings.ToLower(uuid), strings.ToLower(tag)))
}

// Flavor implements GTIDSet.
func (MySQLGTIDSet) Flavor() Flavor { return MySQL }

// IsEmpty implements GTIDSet.
func (m MySQLGTIDSet) IsEmpty() bool { return len(m.sources) == 0 }

// String implements GTIDSet, in MySQL's canonical form: sources sorted by UUID, untagged
// intervals first, then each tag with its intervals.
func (m MySQLGTIDSet) String() string {
	var b strings.Builder
	prev := ""
	for _, s := range m.sources {
		if s.uuid != prev {
			if prev != "" {
				b.WriteByte(',')
			}
			b.WriteString(s.uuid)
			prev = s.uuid
		}
		if s.tag != "" {
			b.WriteByte(':')
			b.WriteString(s.tag)
		}
		for _, iv := range s.intervals {
			b.WriteByte(':')
			b.WriteString(strconv.FormatUint(iv.Start, 10))
			if iv.End != iv.Start {
				b.WriteByte('-')
				b.WriteString(strconv.FormatUint(iv.End, 10))
			}
		}
	}
	return b.String()
}

// Contains implements GTIDSet.
func (m MySQLGTIDSet) Contains(other GTIDSet) bool {
	o, ok := other.(MySQLGTIDSet)
	if !ok {
		return other.IsEmpty()
	}
	return o.subtract(m).IsEmpty()
}

// Equal implements GTIDSet.
func (m MySQLGTIDSet) Equal(other GTIDSet) bool {
	o, ok := other.(MySQLGTIDSet)
	if !ok {
		return m.IsEmpty() && other.IsEmpty()
	}
	return slices.EqualFunc(m.sources, o.sources, func(a, b mysqlSource) bool {
		return a.uuid == b.uuid && a.tag == b.tag && slices.Equal(a.intervals, b.intervals)
	})
}

// Subtract implements GTIDSet.
func (m MySQLGTIDSet) Subtract(other GTIDSet) GTIDSet {
	o, ok := other.(MySQLGTIDSet)
	if !ok {
		return m
	}
	return m.subtract(o)
}

func (m MySQLGTIDSet) subtract(o MySQLGTIDSet) MySQLGTIDSet {
	var r MySQLGTIDSet
	for _, s := range m.sources {
		rest := subtractIntervals(s.intervals, o.source(s.uuid, s.tag))
		if len(rest) > 0 {
			r.sources = append(r.sources, mysqlSource{uuid: s.uuid, tag: s.tag, intervals: rest})
		}
	}
	return r
}

// subtractIntervals returns a minus b; both sorted and merged.
func subtractIntervals(a, b []GTIDInterval) []GTIDInterval {
	var out []GTIDInterval
	j := 0
	for _, x := range a {
		start := x.Start
		for j < len(b) && b[j].End < start {
			j++
		}
		k := j
		for k < len(b) && b[k].Start <= x.End {
			if b[k].Start > start {
				out = append(out, GTIDInterval{Start: start, End: b[k].Start - 1})
			}
			if b[k].End >= x.End {
				start = x.End + 1 // consumed; x.End <= maxGNO so no overflow
				break
			}
			start = b[k].End + 1
			k++
		}
		if start <= x.End {
			out = append(out, GTIDInterval{Start: start, End: x.End})
		}
	}
	return out
}

// Count returns the number of transactions in the set, saturating at math.MaxUint64.
func (m MySQLGTIDSet) Count() uint64 {
	var n uint64
	for _, s := range m.sources {
		for _, iv := range s.intervals {
			n = addSat(n, iv.End-iv.Start+1)
		}
	}
	return n
}

// Ahead implements GTIDSet.
func (m MySQLGTIDSet) Ahead(other GTIDSet) uint64 {
	o, ok := other.(MySQLGTIDSet)
	if !ok {
		return m.Count()
	}
	return m.subtract(o).Count()
}

func addSat(a, b uint64) uint64 {
	if a > math.MaxUint64-b {
		return math.MaxUint64
	}
	return a + b
}

// truncate shortens s for error messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
