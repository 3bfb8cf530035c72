// Package control is the master's control socket: a unix socket on which
// `wsgate status` and `wsgate dump` ask a running `wsgate serve` what its
// workers are doing. One request per connection: the client writes a
// command name and a newline, the server answers one JSON document and
// closes the connection. Anyone who can connect to the socket may ask, so
// it is created mode 0600 in a directory of the user's (DefaultPath).
package control

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Handler answers one command; its result is sent as JSON.
type Handler func(ctx context.Context) (any, error)

// Server serves the control socket.
type Server struct {
	ln       *net.UnixListener
	path     string
	info     os.FileInfo // the socket file as bound, to remove only our own
	handlers map[string]Handler
	log      *slog.Logger
}

// ErrInUse: a running server answers on the path already.
var ErrInUse = errors.New("another wsgate serves this control socket")

// Listen binds the control socket at path (its directory made 0700 if it
// does not exist). A socket file no process answers on is a leftover and
// is replaced; one that answers gives ErrInUse.
func Listen(path string, handlers map[string]Handler, log *slog.Logger) (*Server, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if _, err := os.Lstat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("control socket %s: %w", path, ErrInUse)
		}
		_ = os.Remove(path)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false) // Close removes the file only if it is still ours
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	info, err := os.Lstat(path)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	s := &Server{ln: ln, path: path, info: info, handlers: handlers, log: log}
	go s.serve()
	return s, nil
}

// Path is where the socket is.
func (s *Server) Path() string { return s.path }

// Close stops serving and removes the socket file unless another server
// has replaced it meanwhile.
func (s *Server) Close() {
	s.ln.Close()
	if now, err := os.Lstat(s.path); err == nil && os.SameFile(now, s.info) {
		_ = os.Remove(s.path)
	}
}

func (s *Server) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		go s.answer(c)
	}
}

// reply is the JSON document of an answer: Result, or Error.
type reply struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
}

func (s *Server) answer(c net.Conn) {
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(io.LimitReader(c, 256)).ReadString('\n')
	if err != nil {
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	name := strings.TrimSpace(line)
	var r reply
	if h, ok := s.handlers[name]; !ok {
		r.Error = fmt.Sprintf("unknown command %q", name)
	} else if v, err := h(context.Background()); err != nil {
		r.Error = err.Error()
	} else if r.Result, err = json.Marshal(v); err != nil {
		r.Error = err.Error()
	}
	s.log.Debug("control socket", "command", name, "error", r.Error)
	_ = json.NewEncoder(c).Encode(r)
}

// Ask sends command to the control socket at path and decodes the result
// into v.
func Ask(path, command string, v any) error {
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return fmt.Errorf("no wsgate answers on %s (is it serving this site? see --control-socket): %w", path, err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, command+"\n"); err != nil {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	var r reply
	if err := json.NewDecoder(c).Decode(&r); err != nil {
		return fmt.Errorf("control socket %s: reading the answer: %w", path, err)
	}
	if r.Error != "" {
		return fmt.Errorf("wsgate at %s: %s", path, r.Error)
	}
	return json.Unmarshal(r.Result, v)
}

// DefaultPath is the control socket of a site when none is configured:
// $XDG_RUNTIME_DIR/wsgate/NAME-HASH.sock, or, without XDG_RUNTIME_DIR,
// $TMPDIR/wsgate-UID/NAME-HASH.sock. NAME is the configuration file's base
// name (or "app" for `serve --app`), HASH a digest of what identifies the
// site (the absolute CONFIG_URI, or the directory and module:callable),
// so every site has its own and `wsgate status CONFIG_URI` finds it from
// the same arguments.
func DefaultPath(name, identity string) string {
	dir := os.Getenv("XDG_RUNTIME_DIR")
	if dir != "" {
		dir = filepath.Join(dir, "wsgate")
	} else {
		dir = filepath.Join(os.TempDir(), "wsgate-"+strconv.Itoa(os.Getuid()))
	}
	sum := sha256.Sum256([]byte(identity))
	return filepath.Join(dir, name+"-"+hex.EncodeToString(sum[:])[:12]+".sock")
}
