package consul

import (
	"net/netip"
	"strings"
	"testing"
)

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func TestResolveAddress(t *testing.T) {
	ifs := []netIf{
		{Name: "lo", Up: true, Addrs: addrs("127.0.0.1", "::1")},
		{Name: "eth0", Up: true, Addrs: addrs("fe80::1", "169.254.3.4", "10.1.2.3", "2001:db8::5")},
		{Name: "eth1", Up: true, Addrs: addrs("192.168.7.8")},
		{Name: "eth2", Up: false, Addrs: addrs("172.16.0.9")},
		{Name: "ll", Up: true, Addrs: addrs("fe80::9", "169.254.0.1")},
	}
	tests := []struct {
		name    string
		entries []string
		want    string
		wantErr []string // substrings of the error
	}{
		{name: "interface gives its first IPv4, skipping link-local", entries: []string{"eth0"}, want: "10.1.2.3"},
		{name: "inet is the same as no family", entries: []string{"eth0:inet"}, want: "10.1.2.3"},
		{name: "inet6 gives the first IPv6, skipping link-local", entries: []string{"eth0:inet6"}, want: "2001:db8::5"},
		{name: "first match wins", entries: []string{"eth1", "eth0"}, want: "192.168.7.8"},
		{name: "missing interface falls through", entries: []string{"eth9", "eth1"}, want: "192.168.7.8"},
		{name: "down interface falls through", entries: []string{"eth2", "static:1.2.3.4"}, want: "1.2.3.4"},
		{name: "cidr picks an address in range", entries: []string{"192.168.0.0/16"}, want: "192.168.7.8"},
		{name: "cidr is masked", entries: []string{"10.1.2.77/8"}, want: "10.1.2.3"},
		{name: "cidr ignores interfaces that are down", entries: []string{"172.16.0.0/12", "lo"}, want: "127.0.0.1"},
		{name: "ipv6 cidr", entries: []string{"2001:db8::/32"}, want: "2001:db8::5"},
		{name: "static ipv4", entries: []string{"static:1.2.3.4"}, want: "1.2.3.4"},
		{name: "static ipv6", entries: []string{"static:2001:db8::1"}, want: "2001:db8::1"},
		{name: "loopback by name", entries: []string{"lo"}, want: "127.0.0.1"},
		{
			name:    "nothing matches lists every entry and why",
			entries: []string{"eth9", "eth2", "ll", "ll:inet6", "10.9.0.0/16"},
			wantErr: []string{
				"eth9 (no such interface)", "eth2 (interface is down)",
				"ll (no IPv4 address other than link-local)", "ll:inet6 (no IPv6 address other than link-local)",
				"10.9.0.0/16 (no address in range",
			},
		},
		{name: "empty list", entries: nil, wantErr: []string{"no interfaces configured"}},
		{name: "bad static address", entries: []string{"static:1.2.3"}, wantErr: []string{`"static:1.2.3"`}},
		{name: "bad cidr", entries: []string{"10.0.0.0/33"}, wantErr: []string{`"10.0.0.0/33"`}},
		{name: "bad family", entries: []string{"eth0:ipx"}, wantErr: []string{`unknown address family "ipx"`}},
		{name: "malformed entry fails even after a match", entries: []string{"eth0", "static:nope"}, wantErr: []string{`"static:nope"`}},
		{name: "missing interface name", entries: []string{":inet6"}, wantErr: []string{"no interface name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveAddress(tt.entries, ifs)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("got %q, want an error", got)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestResolveAddress_System(t *testing.T) {
	// The real interface list always has loopback.
	got, err := ResolveAddress([]string{"127.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got, "127.") {
		t.Errorf("got %q, want a loopback address", got)
	}
}
