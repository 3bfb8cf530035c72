package protocol

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
)

// StartPayload is a decoded START frame: the status line the application
// gave start_response and its headers, names and values as sent (latin-1).
type StartPayload struct {
	Code    int
	Status  string // "200 OK"
	Headers [][2][]byte
}

// ParseStart decodes a START payload: status NUL name NUL value NUL … (no
// trailing NUL). The worker has already refused CR, LF and NUL inside names and
// values; this checks again because the master trusts no worker.
func ParseStart(p []byte, into *StartPayload) error {
	i := bytes.IndexByte(p, 0)
	status := p
	rest := []byte(nil)
	if i >= 0 {
		status, rest = p[:i], p[i+1:]
	}
	code, err := parseStatus(status)
	if err != nil {
		return err
	}
	into.Code = code
	into.Status = string(status)
	into.Headers = into.Headers[:0]
	for i >= 0 {
		j := bytes.IndexByte(rest, 0)
		if j < 0 {
			return fmt.Errorf("%w: START header %q has no value", ErrViolation, rest)
		}
		name := rest[:j]
		rest = rest[j+1:]
		value := rest
		i = bytes.IndexByte(rest, 0)
		if i >= 0 {
			value, rest = rest[:i], rest[i+1:]
		}
		if !validName(name) {
			return fmt.Errorf("%w: START header name %q", ErrViolation, name)
		}
		if bytes.ContainsAny(value, "\r\n") {
			return fmt.Errorf("%w: START header %s carries CR or LF", ErrViolation, name)
		}
		into.Headers = append(into.Headers, [2][]byte{name, value})
	}
	return nil
}

func parseStatus(s []byte) (int, error) {
	if len(s) < 3 || (len(s) > 3 && s[3] != ' ') || bytes.ContainsAny(s, "\r\n") {
		return 0, fmt.Errorf("%w: START status %q", ErrViolation, s)
	}
	code, err := strconv.Atoi(string(s[:3]))
	if err != nil || code < 100 {
		return 0, fmt.Errorf("%w: START status %q", ErrViolation, s)
	}
	return code, nil
}

// validName reports whether name is an RFC 9110 token.
func validName(name []byte) bool {
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		if c <= ' ' || c >= 0x7f || bytes.IndexByte([]byte("\"(),/:;<=>?@[\\]{}"), c) >= 0 {
			return false
		}
	}
	return true
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
