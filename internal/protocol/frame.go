// Package protocol is the wire format between the wsgate master and its
// Python workers: length-prefixed frames on a socketpair, the request environ
// encoded as a Python marshal dict. docs/protocol.md is the specification;
// testdata/vectors.json holds the golden frames that both this package's
// tests and python/tests check against.
package protocol

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// HeaderSize is the size of a frame header: u32 payload length, u8 type,
// u32 stream id, all big-endian.
const HeaderSize = 9

// MaxPayload bounds a frame's payload. A larger length is a protocol
// violation: the master never buffers more than this for one frame.
const MaxPayload = 16 << 20

// MaxBufferedPayload bounds the frames the master reads into memory (START,
// ERROR, LOG, CONTROL): only DATA is streamed through.
const MaxBufferedPayload = 1 << 20

// InitialWindow is the request body credit a stream starts with: the master
// may send this many body bytes before the worker asks for more.
const InitialWindow = 64 << 10

// Type is a frame type. Master→worker types are below 16, worker→master
// types from 16 up, so a frame travelling the wrong way is caught at once.
type Type uint8

// Frame types; docs/protocol.md gives each payload.
const (
	Request  Type = 1 // environ (marshal dict) preceded by a flags byte
	Body     Type = 2 // request body bytes
	BodyEnd  Type = 3 // end of the request body (empty)
	FileAck  Type = 4 // u8: 1 = the master opened the file, 0 = send it as DATA
	BodyFail Type = 5 // the client's body broke off (UTF-8 reason): wsgi.input raises
	// DirectAck answers DIRECT: u8 1 = write it, the client's socket rides
	// along (SCM_RIGHTS); 0 = send the bytes as DATA.
	DirectAck Type = 6
	// BodyLoan answers CREDIT: u64 n = read up to n body bytes from the
	// client's socket yourself, which rides along (SCM_RIGHTS); BODY_READ
	// ends the loan.
	BodyLoan Type = 7
	CtlToW   Type = 9 // control, master→worker (u8 kind …)
	Start    Type = 16
	Data     Type = 17
	File     Type = 18 // u32 fd · u64 offset · u64 count
	End      Type = 19
	Error    Type = 20 // UTF-8 text (a traceback); the request failed
	Log      Type = 21 // UTF-8 text written to wsgi.errors
	Credit   Type = 22 // u32: how many more body bytes the worker wants
	CtlFromW Type = 23 // control, worker→master (u8 kind …)
	Stderr   Type = 24 // UTF-8 text the application wrote to sys.stderr during the request
	Direct   Type = 25 // u64: the worker asks to write this many body bytes to the client itself
	Wrote    Type = 26 // u64 count · u8 flags: how many it wrote (flag 1: the client's socket failed)
	BodyRead Type = 27 // u64: body bytes the worker read from the client's socket under a BODY_LOAN, which ends
	// Lent (stream socket, empty): the worker has the connection of a
	// REQUEST sent with FlagLend and serves it from now on.
	Lent Type = 28
	// Return (lend socket, stream = the connection's id): u8 flags ·
	// the bytes the worker read from the client and did not serve; the
	// master serves the connection again (or closes it: ReturnClose).
	Return Type = 29
	// Output (lend socket, stream = the connection's id): response bytes,
	// already HTTP, the client's socket could not take at once (after a
	// Return with ReturnOutput, until the Return that ends them).
	Output Type = 30
	// Owed (lend socket, stream = the connection's id): u8 1 = the worker
	// has written part of a response there and writes the rest as the client
	// reads it, between its other requests; 0 = it wrote all of it. A
	// connection owed a response is closed, not served again, if the worker
	// dies.
	Owed Type = 31
)

// Return flags.
const (
	ReturnClose  = 1 << 0 // the connection ends: close it once its output is written
	ReturnOutput = 1 << 1 // Output frames follow, then a Return that ends them
	ReturnKeep   = 1 << 2 // the master serves the connection from now on: it is not lent again
)

// Request flags (first payload byte of a Request frame).
const (
	FlagHasBody    = 1 << 0 // the request has a body (possibly empty, e.g. chunked)
	FlagBodyInline = 1 << 1 // the whole body follows as BODY… BODY_END, unasked
	FlagOnStream   = 1 << 2 // dispatch marker: the REQUEST frame itself follows on the stream socket
	FlagDirect     = 1 << 3 // the worker may ask to write a large response body to the client itself (DIRECT)
	FlagBodyLoan   = 1 << 4 // a CREDIT may be answered with BODY_LOAN: the worker reads each answer at once
	FlagLend       = 1 << 5 // the client's socket rides along (SCM_RIGHTS): the worker answers LENT and serves the connection
)

// MaxDispatch bounds one message on a dispatch socket (a REQUEST frame and
// its inline body); the worker receives each into a buffer of this size. A
// larger request goes on the stream socket behind a marker (FlagOnStream).
const MaxDispatch = 256 << 10

// Control kinds (first payload byte of a control frame).
const (
	CtlReady  = 1 // worker→master: the application is loaded; u32 pid follows
	CtlStop   = 2 // master→worker: finish the current request, then exit
	CtlCancel = 3 // master→worker: the client of this stream is gone; stop iterating
	// CtlReturnAll (master→worker, on the dispatch socket): hand every lent
	// connection back and keep none from now on (the server drains).
	CtlReturnAll = 4
)

var typeNames = map[Type]string{
	Request: "REQUEST", Body: "BODY", BodyEnd: "BODY_END", FileAck: "FILE_ACK", BodyFail: "BODY_FAIL",
	DirectAck: "DIRECT_ACK", BodyLoan: "BODY_LOAN", CtlToW: "CONTROL",
	Start: "START", Data: "DATA", File: "FILE", End: "END", Error: "ERROR", Log: "LOG",
	Credit: "CREDIT", CtlFromW: "CONTROL", Stderr: "STDERR", Direct: "DIRECT", Wrote: "WROTE",
	BodyRead: "BODY_READ",
	Lent:     "LENT", Return: "RETURN", Output: "OUTPUT", Owed: "OWED",
}

func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// FromWorker reports whether t is a type a worker may send.
func (t Type) FromWorker() bool {
	return t >= Start && t <= Owed
}

// Header is a decoded frame header.
type Header struct {
	Len    uint32
	Type   Type
	Stream uint32
}

// AppendHeader appends a frame header to b.
func AppendHeader(b []byte, t Type, stream uint32, payloadLen int) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(payloadLen))
	b = append(b, byte(t))
	return binary.BigEndian.AppendUint32(b, stream)
}

// AppendFrame appends a whole frame to b.
func AppendFrame(b []byte, t Type, stream uint32, payload []byte) []byte {
	b = AppendHeader(b, t, stream, len(payload))
	return append(b, payload...)
}

// ErrViolation marks a frame that breaks the protocol: the worker that sent
// it is not trusted any further.
var ErrViolation = errors.New("protocol violation")

// ParseHeader decodes a frame header and checks what can be checked without
// the payload.
func ParseHeader(b []byte) (Header, error) {
	h := Header{
		Len:    binary.BigEndian.Uint32(b[0:4]),
		Type:   Type(b[4]),
		Stream: binary.BigEndian.Uint32(b[5:9]),
	}
	if h.Len > MaxPayload {
		return h, fmt.Errorf("%w: %s frame of %d bytes (limit %d)", ErrViolation, h.Type, h.Len, MaxPayload)
	}
	if _, known := typeNames[h.Type]; !known {
		return h, fmt.Errorf("%w: unknown frame type %d", ErrViolation, uint8(h.Type))
	}
	return h, nil
}

// ReadHeader reads and checks one frame header.
func ReadHeader(r *bufio.Reader) (Header, error) {
	b, err := r.Peek(HeaderSize)
	if err != nil {
		if err == io.EOF && len(b) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return Header{}, err
	}
	h, err := ParseHeader(b)
	if err != nil {
		return h, err
	}
	_, _ = r.Discard(HeaderSize)
	return h, nil
}

// ReadPayload reads a frame payload that must fit in memory. When it fits in
// r's buffer the returned slice aliases it and is valid until the next read.
func ReadPayload(r *bufio.Reader, h Header, scratch *[]byte) ([]byte, error) {
	n := int(h.Len)
	if n > MaxBufferedPayload {
		return nil, fmt.Errorf("%w: %s frame of %d bytes (limit %d)", ErrViolation, h.Type, n, MaxBufferedPayload)
	}
	if n <= r.Size() {
		b, err := r.Peek(n)
		if err != nil {
			return nil, unexpected(err)
		}
		_, _ = r.Discard(n)
		return b, nil
	}
	if cap(*scratch) < n {
		*scratch = make([]byte, n)
	}
	b := (*scratch)[:n]
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, unexpected(err)
	}
	return b, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Frame is a decoded frame, used by tests, the fuzz target and the golden
// vectors; the master's hot path reads headers and payloads directly.
type Frame struct {
	Type    Type
	Stream  uint32
	Payload []byte
}

// DecodeFrames splits b into frames, checking each header. It returns the
// frames decoded before the first error.
func DecodeFrames(b []byte) ([]Frame, error) {
	var out []Frame
	for len(b) > 0 {
		if len(b) < HeaderSize {
			return out, fmt.Errorf("%w: %d trailing bytes, short of a header", ErrViolation, len(b))
		}
		h, err := ParseHeader(b)
		if err != nil {
			return out, err
		}
		b = b[HeaderSize:]
		if uint32(len(b)) < h.Len {
			return out, fmt.Errorf("%w: %s frame announces %d bytes, %d present", ErrViolation, h.Type, h.Len, len(b))
		}
		out = append(out, Frame{Type: h.Type, Stream: h.Stream, Payload: b[:h.Len]})
		b = b[h.Len:]
	}
	return out, nil
}
