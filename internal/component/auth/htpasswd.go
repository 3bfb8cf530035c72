package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/GehirnInc/crypt"
	"github.com/GehirnInc/crypt/apr1_crypt"
	"github.com/GehirnInc/crypt/md5_crypt"
	"github.com/GehirnInc/crypt/sha256_crypt"
	"github.com/GehirnInc/crypt/sha512_crypt"
	"golang.org/x/crypto/bcrypt"
)

// An htpasswd file is what Apache's htpasswd writes: one "user:hash" a line.
// As Apache's mod_authn_file reads it, blank lines and lines starting with
// "#" are skipped and the hash ends at the next ":" (later fields are
// ignored). The schemes accepted are those htpasswd writes and that still
// protect a password: bcrypt (-B, "$2y$"; "$2a$" and "$2b$" too), MD5
// (-m, Apache's "$apr1$", and glibc's "$1$"), SHA-256 and SHA-512 crypt (-2,
// -5: "$5$", "$6$") and SHA-1 (-s, "{SHA}"). crypt() DES (-d) counts only
// 8 characters of a password and plain text (-p) is no hash: both are
// refused with the line that holds them.

// scheme is how one entry's hash is checked.
type scheme int

const (
	schemeBcrypt scheme = iota
	schemeSHA1
	schemeCrypt // the $apr1$, $1$, $5$ and $6$ families, through GehirnInc/crypt
)

type entry struct {
	scheme scheme
	hash   string
	sha1   []byte        // {SHA}: the decoded digest
	crypt  crypt.Crypter // schemeCrypt
}

// slow reports whether checking the entry costs enough CPU to be worth the
// cache of accepted passwords (bcrypt and the SHA-crypt family).
func (e *entry) slow() bool {
	return e.scheme == schemeBcrypt || (e.scheme == schemeCrypt && (strings.HasPrefix(e.hash, "$5$") || strings.HasPrefix(e.hash, "$6$")))
}

// verify compares password with the entry in constant time (each library's
// comparison is crypto/subtle's).
func (e *entry) verify(password []byte) bool {
	switch e.scheme {
	case schemeBcrypt:
		return bcrypt.CompareHashAndPassword([]byte(e.hash), password) == nil
	case schemeSHA1:
		sum := sha1.Sum(password)
		return subtle.ConstantTimeCompare(sum[:], e.sha1) == 1
	case schemeCrypt:
		return e.crypt.Verify(e.hash, password) == nil
	}
	return false
}

const cryptAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func inCryptAlphabet(s string) bool {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(cryptAlphabet, s[i]) < 0 {
			return false
		}
	}
	return true
}

// parseHash recognises one entry's hash; the error says what is wrong with
// it and how to mend it, without quoting the hash.
func parseHash(h string) (*entry, error) {
	switch {
	case strings.HasPrefix(h, "$2y$"), strings.HasPrefix(h, "$2a$"), strings.HasPrefix(h, "$2b$"):
		if _, err := bcrypt.Cost([]byte(h)); err != nil {
			return nil, fmt.Errorf("malformed bcrypt hash (%v)", err)
		}
		return &entry{scheme: schemeBcrypt, hash: h}, nil
	case strings.HasPrefix(h, "{SHA}"):
		d, err := base64.StdEncoding.DecodeString(h[len("{SHA}"):])
		if err != nil || len(d) != sha1.Size {
			return nil, fmt.Errorf("malformed {SHA} hash (want base64 of a 20-byte SHA-1 digest)")
		}
		return &entry{scheme: schemeSHA1, hash: h, sha1: d}, nil
	case strings.HasPrefix(h, "$apr1$"):
		return cryptEntry(h, apr1_crypt.New(), 22)
	case strings.HasPrefix(h, "$1$"):
		return cryptEntry(h, md5_crypt.New(), 22)
	case strings.HasPrefix(h, "$5$"):
		return cryptEntry(h, sha256_crypt.New(), 43)
	case strings.HasPrefix(h, "$6$"):
		return cryptEntry(h, sha512_crypt.New(), 86)
	case len(h) == 13 && inCryptAlphabet(h):
		return nil, fmt.Errorf("crypt() DES hash (htpasswd -d) refused: it counts only the first 8 characters of a password; re-create the entry with htpasswd -B")
	}
	return nil, fmt.Errorf("not a hash wsgate accepts (bcrypt $2y$, $apr1$, $1$, $5$, $6$ or {SHA}); plain-text passwords are refused: re-create the entry with htpasswd -B")
}

// cryptEntry checks the shape "$id$[rounds=N$]salt$digest" that the
// crypt libraries would otherwise only reject at the first login.
func cryptEntry(h string, c crypt.Crypter, digestLen int) (*entry, error) {
	parts := strings.Split(h, "$") // "", id, [rounds=N,] salt, digest
	if len(parts) == 5 && strings.HasPrefix(parts[2], "rounds=") {
		parts = append(parts[:2], parts[3:]...)
	}
	if len(parts) != 4 || parts[2] == "" || len(parts[3]) != digestLen || !inCryptAlphabet(parts[3]) {
		return nil, fmt.Errorf("malformed $%s$ hash (want $%s$salt$ and a %d-character digest)", parts[1], parts[1], digestLen)
	}
	return &entry{scheme: schemeCrypt, hash: h, crypt: c}, nil
}

// parseFile reads an htpasswd file's content; an error names the file and
// line ("users.htpasswd:3: …").
func parseFile(name string, data []byte) (map[string]*entry, error) {
	users := map[string]*entry{}
	firstLine := map[string]int{}
	for i, line := range bytes.Split(data, []byte("\n")) {
		n := i + 1
		s := strings.TrimRight(string(line), " \t\r")
		if strings.TrimSpace(s) == "" || strings.HasPrefix(s, "#") {
			continue
		}
		user, rest, ok := strings.Cut(s, ":")
		if !ok {
			return nil, fmt.Errorf("%s:%d: no ':' between user and hash", name, n)
		}
		if user == "" {
			return nil, fmt.Errorf("%s:%d: empty user name", name, n)
		}
		hash, _, _ := strings.Cut(rest, ":")
		if hash == "" {
			return nil, fmt.Errorf("%s:%d: user %q has no hash", name, n, user)
		}
		if prev, dup := firstLine[user]; dup {
			return nil, fmt.Errorf("%s:%d: user %q is already defined on line %d", name, n, user, prev)
		}
		e, err := parseHash(hash)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: user %q: %v", name, n, user, err)
		}
		users[user] = e
		firstLine[user] = n
	}
	return users, nil
}

// stamp identifies one version of the file: a change of any field is a
// change of the file (editors and htpasswd may replace it by renaming).
type stamp struct {
	mtime int64 // unix nanoseconds
	size  int64
	inode uint64
}

func stampOf(fi os.FileInfo) stamp {
	s := stamp{mtime: fi.ModTime().UnixNano(), size: fi.Size()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.inode = st.Ino
	}
	return s
}

// table is one successfully parsed version of the file.
type table struct {
	users map[string]*entry
	decoy *entry // checked for unknown users, so their answer takes as long
}

// userFile is the htpasswd file, re-read when it changes: at most once every
// recheck, the first request after that stats it; a changed file is parsed
// and replaces the table, a file that no longer parses (or vanished) is
// logged and the last good table stays in force.
type userFile struct {
	path    string // as read
	display string // as written in the INI, for messages
	log     *slog.Logger
	recheck time.Duration
	now     func() time.Time

	cur       atomic.Pointer[table]
	nextCheck atomic.Int64 // unix nanoseconds
	mu        sync.Mutex   // one re-read at a time
	seen      stamp        // the version last read, good or bad (under mu)

	cache acceptedCache
}

func openUserFile(path, display string, log *slog.Logger) (*userFile, error) {
	u := &userFile{path: path, display: display, log: log, recheck: time.Second, now: time.Now}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	t, err := u.read()
	if err != nil {
		return nil, err
	}
	u.seen = stampOf(fi)
	u.cur.Store(t)
	u.nextCheck.Store(u.now().Add(u.recheck).UnixNano())
	u.cache.init()
	return u, nil
}

func (u *userFile) read() (*table, error) {
	data, err := os.ReadFile(u.path)
	if err != nil {
		return nil, err
	}
	users, err := parseFile(u.display, data)
	if err != nil {
		return nil, err
	}
	t := &table{users: users}
	for _, e := range users { // any entry will do as the decoy; a slow one is best
		if t.decoy == nil || e.slow() {
			t.decoy = e
		}
		if e.slow() {
			break
		}
	}
	return t, nil
}

// current returns the table in force, re-reading the file first when it is
// time to look and it changed.
func (u *userFile) current() *table {
	now := u.now().UnixNano()
	next := u.nextCheck.Load()
	if now < next || !u.nextCheck.CompareAndSwap(next, now+int64(u.recheck)) {
		return u.cur.Load()
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	fi, err := os.Stat(u.path)
	if err != nil {
		if u.seen != (stamp{}) {
			u.log.Warn("htpasswd file unreadable; keeping the last good one", "file", u.display, "err", err)
			u.seen = stamp{}
		}
		return u.cur.Load()
	}
	st := stampOf(fi)
	if st == u.seen {
		return u.cur.Load()
	}
	u.seen = st
	t, err := u.read()
	if err != nil {
		u.log.Warn("htpasswd file not reloaded; keeping the last good one", "err", err)
		return u.cur.Load()
	}
	u.cur.Store(t)
	u.log.Info("htpasswd reloaded", "file", u.display, "users", len(t.users))
	return t
}

// check reports whether password is user's. An unknown user costs the same
// work as a known one (the decoy entry), so timing does not tell which
// names exist.
func (u *userFile) check(user, password string) bool {
	t := u.current()
	e, ok := t.users[user]
	if !ok {
		if t.decoy != nil {
			t.decoy.verify([]byte(password))
		}
		return false
	}
	if !e.slow() {
		return e.verify([]byte(password))
	}
	key := u.cache.key(user, password, e.hash)
	if u.cache.has(key) {
		return true
	}
	if !e.verify([]byte(password)) {
		return false
	}
	u.cache.add(key)
	return true
}

// acceptedCache remembers recently accepted (user, password, hash) triples,
// so that a browser sending its Basic credentials with every request costs
// one bcrypt, not one per request. Keys are HMAC-SHA256 under a key drawn at
// start, so the cache holds no digest of a password that could be attacked
// without that key; a changed hash in the file changes the key. Bounded:
// emptied when full.
type acceptedCache struct {
	mu     sync.Mutex
	secret [32]byte
	keys   map[[32]byte]struct{}
}

const acceptedCacheSize = 1024

func (c *acceptedCache) init() {
	if _, err := rand.Read(c.secret[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	c.keys = map[[32]byte]struct{}{}
}

func (c *acceptedCache) key(user, password, hash string) [32]byte {
	m := hmac.New(sha256.New, c.secret[:])
	for _, s := range []string{user, password, hash} {
		m.Write([]byte(s))
		m.Write([]byte{0})
	}
	var k [32]byte
	m.Sum(k[:0])
	return k
}

func (c *acceptedCache) has(k [32]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.keys[k]
	return ok
}

func (c *acceptedCache) add(k [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.keys) >= acceptedCacheSize {
		clear(c.keys)
	}
	c.keys[k] = struct{}{}
}
