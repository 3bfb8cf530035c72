package server

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// DropPrivileges makes the process run as name (a user name or uid) with
// group (a name or gid; empty: the user's own) and the user's supplementary
// groups. It is called once the sockets are bound, before the workers
// start, so they inherit it. Go applies the change to every thread.
func DropPrivileges(name, group string) error {
	if name == "" {
		return nil
	}
	u, err := lookup(name, user.Lookup, user.LookupId)
	if err != nil {
		return fmt.Errorf("user %s: %w", name, err)
	}
	gid := u.Gid
	if group != "" {
		g, err := lookup(group, user.LookupGroup, user.LookupGroupId)
		if err != nil {
			return fmt.Errorf("group %s: %w", group, err)
		}
		gid = g.Gid
	}
	uid, _ := strconv.Atoi(u.Uid)
	g, _ := strconv.Atoi(gid)
	groups := []int{g}
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if n, err := strconv.Atoi(id); err == nil && n != g {
				groups = append(groups, n)
			}
		}
	}
	if os.Getuid() != 0 {
		if os.Getuid() == uid && os.Getgid() == g {
			return nil // already that user: nothing to drop
		}
		return fmt.Errorf("user %s: only root can change user (running as uid %d)", name, os.Getuid())
	}
	// Groups first: once the uid is not root, they can no longer change.
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(g); err != nil {
		return fmt.Errorf("setgid %d: %w", g, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("setuid %d: %w", uid, err)
	}
	return nil
}

// lookup finds a user or group by name, else, for a number, by id.
func lookup[T any](name string, byName, byID func(string) (T, error)) (T, error) {
	v, err := byName(name)
	if err != nil {
		if _, numeric := strconv.Atoi(name); numeric == nil {
			return byID(name)
		}
	}
	return v, err
}
