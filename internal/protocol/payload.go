package protocol

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// StartPayload is a decoded START frame: the status line the application
// gave start_response and its headers, names and values as sent (latin-1).
// All strings share one allocation, the payload's.
type StartPayload struct {
	Code    int
	Status  string // "200 OK"
	Headers [][2]string
}

// ParseStart decodes a START payload: status NUL name NUL value NUL … (no
// trailing NUL). The worker has already refused CR, LF and NUL inside names and
// values; this checks again because the master trusts no worker. into's
// Headers slice is reused.
func ParseStart(payload []byte, into *StartPayload) error {
	p := string(payload)
	status, rest, more := strings.Cut(p, "\x00")
	code, err := parseStatus(status)
	if err != nil {
		return err
	}
	into.Code = code
	into.Status = status
	into.Headers = into.Headers[:0]
	for more {
		var name, value string
		var ok bool
		name, rest, ok = strings.Cut(rest, "\x00")
		if !ok {
			return fmt.Errorf("%w: START header %q has no value", ErrViolation, name)
		}
		value, rest, more = strings.Cut(rest, "\x00")
		if !validName(name) {
			return fmt.Errorf("%w: START header name %q", ErrViolation, name)
		}
		if hasCRLF(value) {
			return fmt.Errorf("%w: START header %s carries CR or LF", ErrViolation, name)
		}
		into.Headers = append(into.Headers, [2]string{name, value})
	}
	return nil
}

func parseStatus(s string) (int, error) {
	if len(s) < 3 || (len(s) > 3 && s[3] != ' ') || hasCRLF(s) {
		return 0, fmt.Errorf("%w: START status %q", ErrViolation, s)
	}
	code, err := strconv.Atoi(s[:3])
	if err != nil || code < 100 {
		return 0, fmt.Errorf("%w: START status %q", ErrViolation, s)
	}
	return code, nil
}

// validName reports whether name is an RFC 9110 token (httpguts' table: one
// lookup per byte, where a search of the separators cost a third of a
// response's START).
func validName(name string) bool { return httpguts.ValidHeaderFieldName(name) }

// hasCRLF reports whether s holds a CR or an LF (two vectorised searches,
// cheaper than strings.ContainsAny's set for the usual short value).
func hasCRLF(s string) bool {
	return strings.IndexByte(s, '\r') >= 0 || strings.IndexByte(s, '\n') >= 0
}

// AppendStart encodes a START payload (the worker's side; used by tests).
func AppendStart(b []byte, status string, headers [][2]string) []byte {
	b = append(b, status...)
	for _, h := range headers {
		b = append(b, 0)
		b = append(b, h[0]...)
		b = append(b, 0)
		b = append(b, h[1]...)
	}
	return b
}

// FilePayload is a decoded FILE frame: send count bytes of the worker's open
// file descriptor fd from offset.
type FilePayload struct {
	FD     uint32
	Offset uint64
	Count  uint64
}

// FilePayloadSize is the size of a FILE payload.
const FilePayloadSize = 20

// ParseFile decodes a FILE payload.
func ParseFile(p []byte) (FilePayload, error) {
	if len(p) != FilePayloadSize {
		return FilePayload{}, fmt.Errorf("%w: FILE payload of %d bytes", ErrViolation, len(p))
	}
	return FilePayload{
		FD:     binary.BigEndian.Uint32(p[0:4]),
		Offset: binary.BigEndian.Uint64(p[4:12]),
		Count:  binary.BigEndian.Uint64(p[12:20]),
	}, nil
}

// AppendFile encodes a FILE payload.
func AppendFile(b []byte, f FilePayload) []byte {
	b = binary.BigEndian.AppendUint32(b, f.FD)
	b = binary.BigEndian.AppendUint64(b, f.Offset)
	return binary.BigEndian.AppendUint64(b, f.Count)
}

// ParseCredit decodes a CREDIT payload.
func ParseCredit(p []byte) (uint32, error) {
	if len(p) != 4 {
		return 0, fmt.Errorf("%w: CREDIT payload of %d bytes", ErrViolation, len(p))
	}
	return binary.BigEndian.Uint32(p), nil
}

// ParseReady decodes a worker's READY control payload and returns its pid.
func ParseReady(p []byte) (int, error) {
	if len(p) != 5 || p[0] != CtlReady {
		return 0, fmt.Errorf("%w: expected READY control, got %q", ErrViolation, p)
	}
	return int(binary.BigEndian.Uint32(p[1:5])), nil
}

// ParseDirect decodes a DIRECT payload: the body bytes the worker asks to
// write itself.
func ParseDirect(p []byte) (int64, error) {
	if len(p) != 8 || binary.BigEndian.Uint64(p) > 1<<62 {
		return 0, fmt.Errorf("%w: DIRECT payload %x", ErrViolation, p)
	}
	return int64(binary.BigEndian.Uint64(p)), nil
}

// ParseBodyRead decodes a BODY_READ payload: the body bytes the worker read
// from the client's socket.
func ParseBodyRead(p []byte) (int64, error) {
	if len(p) != 8 || binary.BigEndian.Uint64(p) > 1<<62 {
		return 0, fmt.Errorf("%w: BODY_READ payload %x", ErrViolation, p)
	}
	return int64(binary.BigEndian.Uint64(p)), nil
}

// WroteFlagClientFailed: writing to the client's socket failed (not merely
// would block): the client is gone.
const WroteFlagClientFailed = 1

// ParseWrote decodes a WROTE payload: how many bytes the worker wrote to
// the client, and whether the client's socket failed.
func ParseWrote(p []byte) (n int64, clientFailed bool, err error) {
	if len(p) != 9 || binary.BigEndian.Uint64(p) > 1<<62 || p[8]&^WroteFlagClientFailed != 0 {
		return 0, false, fmt.Errorf("%w: WROTE payload %x", ErrViolation, p)
	}
	return int64(binary.BigEndian.Uint64(p)), p[8]&WroteFlagClientFailed != 0, nil
}
