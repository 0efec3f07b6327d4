package consul

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// ResolveAddress picks the address to advertise for the service from a list of candidates,
// tried in order; the first that yields an address wins. Each entry is one of:
//
//	"eth0"            the first IPv4 address of interface eth0 (also "eth0:inet")
//	"eth0:inet6"      the first IPv6 address of interface eth0
//	"10.0.0.0/8"      the first address, on any interface that is up, inside the prefix
//	"static:1.2.3.4"  that address, as is (IPv4 or IPv6)
//
// An interface that is down matches nothing, and interface names never yield link-local
// addresses (169.254/16, fe80::/10): other nodes cannot reach them. A malformed entry is an
// error even when an earlier one would match, so that a typo in the config is not hidden.
// When nothing matches, the error lists each entry with why it did not.
func ResolveAddress(interfaces []string) (string, error) {
	ifs, err := systemInterfaces()
	if err != nil {
		return "", fmt.Errorf("consul: resolve address: %w", err)
	}
	return resolveAddress(interfaces, ifs)
}

// netIf is what ResolveAddress needs of a network interface; tests build them by hand.
type netIf struct {
	Name  string
	Up    bool
	Addrs []netip.Addr
}

func systemInterfaces() ([]netIf, error) {
	sys, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	out := make([]netIf, 0, len(sys))
	for _, si := range sys {
		addrs, err := si.Addrs()
		if err != nil {
			return nil, fmt.Errorf("addresses of %s: %w", si.Name, err)
		}
		ni := netIf{Name: si.Name, Up: si.Flags&net.FlagUp != 0}
		for _, a := range addrs {
			var ip net.IP
			switch v := a.(type) {
			case *net.IPNet:
				ip = v.IP
			case *net.IPAddr:
				ip = v.IP
			}
			if addr, ok := netip.AddrFromSlice(ip); ok {
				ni.Addrs = append(ni.Addrs, addr.Unmap())
			}
		}
		out = append(out, ni)
	}
	return out, nil
}

// addrSpec is one parsed ResolveAddress entry.
type addrSpec struct {
	raw    string
	static netip.Addr   // "static:..."
	prefix netip.Prefix // CIDR
	iface  string       // interface name
	inet6  bool         // with iface: IPv6 instead of IPv4
}

func parseAddrSpec(s string) (addrSpec, error) {
	sp := addrSpec{raw: s}
	switch {
	case s == "":
		return sp, errors.New("empty entry")
	case strings.HasPrefix(s, "static:"):
		a, err := netip.ParseAddr(strings.TrimPrefix(s, "static:"))
		if err != nil {
			return sp, fmt.Errorf("%q: %w", s, err)
		}
		sp.static = a.Unmap()
	case strings.Contains(s, "/"):
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return sp, fmt.Errorf("%q: %w", s, err)
		}
		sp.prefix = p.Masked()
	default:
		name, family, _ := strings.Cut(s, ":")
		switch family {
		case "", "inet":
		case "inet6":
			sp.inet6 = true
		default:
			return sp, fmt.Errorf("%q: unknown address family %q (want inet or inet6)", s, family)
		}
		if name == "" {
			return sp, fmt.Errorf("%q: no interface name", s)
		}
		sp.iface = name
	}
	return sp, nil
}

func resolveAddress(entries []string, ifs []netIf) (string, error) {
	if len(entries) == 0 {
		return "", errors.New("consul: resolve address: no interfaces configured")
	}
	specs := make([]addrSpec, 0, len(entries))
	for _, e := range entries {
		sp, err := parseAddrSpec(e)
		if err != nil {
			return "", fmt.Errorf("consul: resolve address: %w", err)
		}
		specs = append(specs, sp)
	}
	var tried []string
	for _, sp := range specs {
		addr, why := sp.match(ifs)
		if addr.IsValid() {
			return addr.String(), nil
		}
		tried = append(tried, sp.raw+" ("+why+")")
	}
	return "", fmt.Errorf("consul: resolve address: nothing matched: %s", strings.Join(tried, ", "))
}

// match returns the entry's address, or an invalid one and why there is none.
func (sp addrSpec) match(ifs []netIf) (netip.Addr, string) {
	switch {
	case sp.static.IsValid():
		return sp.static, ""
	case sp.prefix.IsValid():
		for _, ni := range ifs {
			if !ni.Up {
				continue
			}
			for _, a := range ni.Addrs {
				if sp.prefix.Contains(a) {
					return a, ""
				}
			}
		}
		return netip.Addr{}, "no address in range on an interface that is up"
	}
	for _, ni := range ifs {
		if ni.Name != sp.iface {
			continue
		}
		if !ni.Up {
			return netip.Addr{}, "interface is down"
		}
		for _, a := range ni.Addrs {
			if a.Is4() != sp.inet6 && !a.IsLinkLocalUnicast() {
				return a, ""
			}
		}
		if sp.inet6 {
			return netip.Addr{}, "no IPv6 address other than link-local"
		}
		return netip.Addr{}, "no IPv4 address other than link-local"
	}
	return netip.Addr{}, "no such interface"
}
