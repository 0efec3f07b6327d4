package pilot

import (
	"os"
	"os/user"
	"strconv"
)

// chownTo hands dir to the named OS user when we can (we run as root in the container).
func chownTo(dir, name string) {
	u, err := user.Lookup(name)
	if err != nil {
		return
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	_ = os.Chown(dir, uid, gid)
}
