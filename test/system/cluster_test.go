//go:build system

package system

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// The driver logs dropped connections on its own; the checker's timeline says what matters.
func init() { _ = mysql.SetLogger(log.New(io.Discard, "", 0)) }

// Status is `mysqlpilot status --json` of one node (decoded loosely).
type Status struct {
	Node     string `json:"node"`
	Role     string `json:"role"`
	Healthy  bool   `json:"healthy"`
	Action   string `json:"action"`
	Holder   string `json:"holder"`
	Session  bool   `json:"session"`
	Writable bool   `json:"writable"`
	Alone    bool   `json:"alone"`
	Executed string `json:"gtid_executed"`
	Error    string `json:"error"`
	Replica  *struct {
		Host       string
		IORunning  bool
		SQLRunning bool
		Error      string
		Errant     bool
	} `json:"replica"`
}

func (s Status) String() string {
	e := ""
	if s.Error != "" {
		e = " error=" + s.Error
	}
	return fmt.Sprintf("%s role=%q healthy=%v writable=%v holder=%s gtid=%s action=%q%s", s.Node, s.Role, s.Healthy, s.Writable, s.Holder, s.Executed, s.Action, e)
}

// Status asks a node's mysqlpilot through docker exec; ok is false when it does not answer.
func (p *Project) Status(n Node) (Status, bool) {
	// Exit code 1 means "unhealthy" and still prints the JSON.
	out, _ := p.Exec(10*time.Second, n.ID, nil, "mysqlpilot", "status", "--json")
	var st Status
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Node == "" {
		return Status{}, false
	}
	return st, true
}

// Statuses asks every node at once.
func (p *Project) Statuses(nodes []Node) []Status {
	out := make([]Status, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if st, ok := p.Status(n); ok {
				out[i] = st
			}
		}()
	}
	wg.Wait()
	return out
}

// Eventually polls cond every `every` until it holds or d passes (then the test fails with
// what it waited for and the last word of cond); it returns how long it took.
func Eventually(t testing.TB, d, every time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	last := ""
	for {
		ok, why := cond()
		if ok {
			return time.Since(start)
		}
		if why != "" {
			last = why
		}
		if time.Since(start) > d {
			t.Fatalf("timed out after %s waiting for %s; last: %s", d, what, last)
		}
		time.Sleep(every)
	}
}

// Settled is one observation of a settled cluster.
type Settled struct {
	Primary  Node
	Replicas []Node
}

// WaitSettled waits until exactly want mysql containers run, one of them is a healthy,
// writable primary and the others are healthy replicas of it.
func (p *Project) WaitSettled(t testing.TB, want int, d time.Duration) Settled {
	t.Helper()
	var s Settled
	took := Eventually(t, d, time.Second, fmt.Sprintf("1 healthy primary and %d healthy replicas", want-1), func() (bool, string) {
		s = Settled{}
		nodes := p.Nodes()
		if len(nodes) != want {
			return false, fmt.Sprintf("%d mysql containers running", len(nodes))
		}
		sts := p.Statuses(nodes)
		var primaries []int
		for i, st := range sts {
			if st.Role == "primary" && st.Writable && st.Healthy {
				primaries = append(primaries, i)
			}
		}
		if len(primaries) != 1 {
			return false, fmt.Sprintf("%d healthy primaries: %v", len(primaries), sts)
		}
		pr := nodes[primaries[0]]
		for i, st := range sts {
			if i == primaries[0] {
				continue
			}
			if st.Role != "replica" || !st.Healthy || st.Writable || st.Holder != pr.Name {
				return false, fmt.Sprintf("not a healthy replica of %s: %v", pr.Name, st)
			}
			s.Replicas = append(s.Replicas, nodes[i])
		}
		s.Primary = pr
		return true, ""
	})
	t.Logf("settled in %s: primary %s, replicas %v", took.Round(100*time.Millisecond), s.Primary, s.Replicas)
	return s
}

// ---------------------------------------------------------------------------------------------
// SQL from the host, as the application user, to a container's address on the project network

type sqlDB = sql.DB

// DB returns a pooled connection to node n (cached per container and address).
func (p *Project) DB(n Node) *sql.DB {
	key := n.ID + "@" + n.IP
	p.mu.Lock()
	defer p.mu.Unlock()
	if db, ok := p.dbs[key]; ok {
		return db
	}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.DBName = p.AppUser, p.AppPassword, p.AppDB
	cfg.Net, cfg.Addr = "tcp", n.IP+":3306"
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = time.Second, 3*time.Second, 3*time.Second
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		p.t.Fatalf("mysql connector: %v", err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(2)
	db.SetMaxIdleConns(2)
	db.SetConnMaxLifetime(time.Minute)
	p.dbs[key] = db
	return db
}

// PatientDB opens a pool to n without read or write timeouts, like an application that waits
// as long as it takes (the caller closes it).
func (p *Project) PatientDB(n Node) *sql.DB {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.DBName = p.AppUser, p.AppPassword, p.AppDB
	cfg.Net, cfg.Addr = "tcp", n.IP+":3306"
	cfg.Timeout = 5 * time.Second
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		p.t.Fatalf("mysql connector: %v", err)
	}
	return sql.OpenDB(connector)
}

// SQL runs statements on n as the application user (bounded).
func (p *Project) SQL(n Node, stmts ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, s := range stmts {
		if _, err := p.DB(n).ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%s on %s: %w", s, n, err)
		}
	}
	return nil
}

// IDs returns the ids in table on n.
func (p *Project) IDs(n Node, table string) (map[int64]bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	rows, err := p.DB(n).QueryContext(ctx, "SELECT id FROM "+table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ids := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids[id] = true
	}
	return ids, rows.Err()
}

// isReadOnlyErr reports a write refused because the server is read-only (1290).
func isReadOnlyErr(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "read-only") || strings.Contains(err.Error(), "1290"))
}

// figures prints a test's numbers in one greppable line.
func figures(t testing.TB, kv ...any) {
	t.Helper()
	var b strings.Builder
	b.WriteString("FIGURES " + t.Name())
	for i := 0; i+1 < len(kv); i += 2 {
		v := kv[i+1]
		if d, ok := v.(time.Duration); ok {
			v = d.Round(time.Millisecond)
		}
		fmt.Fprintf(&b, " %v=%v", kv[i], v)
	}
	t.Log(b.String())
}

func names(nodes []Node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.Name)
	}
	sort.Strings(out)
	return out
}
