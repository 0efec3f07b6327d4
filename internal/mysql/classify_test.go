package mysql

import (
	"strings"
	"testing"
)

// The primary's refusals of a replica's position, as MariaDB and MySQL word them.
func TestClassify1236(t *testing.T) {
	for _, c := range []struct {
		errno          int
		msg            string
		errant, purged bool
	}{
		{1236, "Error: connecting slave requested to start from GTID 0-1001-42, which is not in the master's binlog", true, false},
		{1236, "Error: connecting slave requested to start from GTID 0-1001-42, which is not in the master's binlog. Since the master's binlog contains GTIDs with higher sequence numbers, it probably means that the slave has diverged due to executing extra erroneous transactions", true, false},
		{1236, "The binlog on the master is missing the GTID 0-1-7 requested by the slave (even though a subsequent sequence number does exist), and GTID strict mode is enabled", true, false},
		{1236, "Could not find GTID state requested by slave in any binlog files. Probably the slave state is too old and required binlog files have been purged.", false, true},
		{1236, "Cannot replicate because the source purged required binary logs. Replicate the missing transactions from elsewhere, or provision a new replica from backup.", false, true},
		{1236, "Replica has more GTIDs than the source has, using the source's SERVER_UUID.", true, false},
		{1236, "Slave has more GTIDs than the master has, using the master's SERVER_UUID.", true, false},
		{1236, "log event entry exceeded max_allowed_packet; Increase max_allowed_packet on master", false, false},
		{2003, "Can't connect to MySQL server on '10.0.0.1' (111) ... purged", false, false},
	} {
		errant, purged := classify1236(c.errno, strings.ToLower(c.msg))
		if errant != c.errant || purged != c.purged {
			t.Errorf("%d %q: errant=%v purged=%v, want %v %v", c.errno, c.msg, errant, purged, c.errant, c.purged)
		}
	}
}
