package protocol

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.json from the encoders")

// vector is one golden frame. The semantic fields say what the frame means;
// hex is its exact encoding. python/tests/test_protocol.py reads the same
// file and checks the worker's encoder and decoder against it.
type vector struct {
	Name    string       `json:"name"`
	Type    Type         `json:"type"`
	Stream  uint32       `json:"stream"`
	Flags   *byte        `json:"flags,omitempty"`
	Environ [][2]string  `json:"environ,omitempty"` // REQUEST: ordered (key, value); values are latin-1 text
	Status  string       `json:"status,omitempty"`  // START
	Headers [][2]string  `json:"headers,omitempty"` // START
	Text    *string      `json:"text,omitempty"`    // DATA, BODY, ERROR, LOG, BODY_FAIL: UTF-8 text of the payload
	File    *FilePayload `json:"file,omitempty"`
	Credit  *uint32      `json:"credit,omitempty"`
	Control []byte       `json:"control,omitempty"` // CONTROL payload bytes (base64 in JSON)
	Hex     string       `json:"hex"`
}

func ptr[T any](v T) *T { return &v }

// latin1 turns text whose code points are all below 256 into the bytes they
// stand for, as the master sees header values on the wire.
func latin1(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteByte(byte(r))
	}
	return b.String()
}

func (v *vector) encode() []byte {
	var payload []byte
	switch {
	case v.Environ != nil:
		payload = append(payload, *v.Flags)
		payload = BeginDict(payload)
		for _, kv := range v.Environ {
			payload = AppendItem(payload, latin1(kv[0]), latin1(kv[1]))
		}
		payload = EndDict(payload)
	case v.Status != "":
		hs := make([][2]string, len(v.Headers))
		for i, h := range v.Headers {
			hs[i] = [2]string{latin1(h[0]), latin1(h[1])}
		}
		payload = AppendStart(nil, latin1(v.Status), hs)
	case v.Text != nil:
		payload = []byte(*v.Text)
	case v.File != nil:
		payload = AppendFile(nil, *v.File)
	case v.Credit != nil:
		payload = []byte{byte(*v.Credit >> 24), byte(*v.Credit >> 16), byte(*v.Credit >> 8), byte(*v.Credit)}
	case v.Control != nil:
		payload = v.Control
	}
	return AppendFrame(nil, v.Type, v.Stream, payload)
}

func goldenVectors() []vector {
	long := strings.Repeat("x", 300)
	return []vector{
		{Name: "request GET, no body", Type: Request, Stream: 1, Flags: ptr(byte(0)), Environ: [][2]string{
			{"REQUEST_METHOD", "GET"}, {"SCRIPT_NAME", ""}, {"PATH_INFO", "/hello"}, {"QUERY_STRING", "a=1&b=2"},
			{"SERVER_PROTOCOL", "HTTP/1.1"}, {"wsgi.url_scheme", "http"}, {"HTTP_HOST", "example.org:8080"}}},
		{Name: "request with latin-1 path and a long header", Type: Request, Stream: 7,
			Flags: ptr(byte(FlagHasBody | FlagBodyInline)), Environ: [][2]string{
				{"REQUEST_METHOD", "POST"}, {"PATH_INFO", "/caf\u00e9/\u00ff"}, {"CONTENT_LENGTH", "5"},
				{"HTTP_X_LONG", long}, {"HTTP_X_EMPTY", ""}}},
		{Name: "body", Type: Body, Stream: 7, Text: ptr("hello")},
		{Name: "body end", Type: BodyEnd, Stream: 7, Text: ptr("")},
		{Name: "body fail", Type: BodyFail, Stream: 7, Text: ptr("unexpected EOF")},
		{Name: "credit", Type: Credit, Stream: 3, Credit: ptr(uint32(65536))},
		{Name: "start", Type: Start, Stream: 1, Status: "200 OK", Headers: [][2]string{
			{"Content-Type", "text/plain; charset=utf-8"}, {"Set-Cookie", "a=1"}, {"Set-Cookie", "b=2"}, {"X-Latin", "\u00e9t\u00e9"}}},
		{Name: "start without headers", Type: Start, Stream: 2, Status: "204 No Content"},
		{Name: "data", Type: Data, Stream: 1, Text: ptr("Hello, world!\n")},
		{Name: "file", Type: File, Stream: 4, File: &FilePayload{FD: 7, Offset: 1 << 33, Count: 12345}},
		{Name: "file ack", Type: FileAck, Stream: 4, Control: []byte{1}},
		{Name: "end", Type: End, Stream: 1, Text: ptr("")},
		{Name: "error", Type: Error, Stream: 5, Text: ptr("Traceback (most recent call last):\n  ...\nValueError: boom\n")},
		{Name: "log", Type: Log, Stream: 5, Text: ptr("something happened \u2713")},
		{Name: "ready", Type: CtlFromW, Stream: 0, Control: []byte{CtlReady, 0, 0, 0x30, 0x39}},
		{Name: "stop", Type: CtlToW, Stream: 0, Control: []byte{CtlStop}},
	}
}

const vectorsPath = "testdata/vectors.json"

func TestGoldenVectors(t *testing.T) {
	vs := goldenVectors()
	for i := range vs {
		vs[i].Hex = hex.EncodeToString(vs[i].encode())
	}
	if *update {
		data, err := json.MarshalIndent(map[string]any{
			"comment": "Golden frames of docs/protocol.md, read by internal/protocol and python/tests. Regenerate: go test ./internal/protocol -run Golden -update",
			"vectors": vs,
		}, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vectorsPath, append(data, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatalf("reading %s: %v (run with -update to create it)", vectorsPath, err)
	}
	var file struct{ Vectors []vector }
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Vectors) != len(vs) {
		t.Fatalf("%s holds %d vectors, the encoders %d", vectorsPath, len(file.Vectors), len(vs))
	}
	for i, golden := range file.Vectors {
		t.Run(golden.Name, func(t *testing.T) {
			got := golden.encode()
			want, err := hex.DecodeString(golden.Hex)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("encoding differs from the golden frame\n got %x\nwant %x", got, want)
			}
			if vs[i].Hex != golden.Hex {
				t.Fatalf("vector %d moved: regenerate with -update", i)
			}
			frames, err := DecodeFrames(want)
			if err != nil || len(frames) != 1 {
				t.Fatalf("decoding: %v (%d frames)", err, len(frames))
			}
			f := frames[0]
			if f.Type != golden.Type || f.Stream != golden.Stream {
				t.Fatalf("decoded %s/%d, want %s/%d", f.Type, f.Stream, golden.Type, golden.Stream)
			}
			switch f.Type {
			case Start:
				var sp StartPayload
				if err := ParseStart(f.Payload, &sp); err != nil {
					t.Fatal(err)
				}
				if sp.Status != latin1(golden.Status) || len(sp.Headers) != len(golden.Headers) {
					t.Fatalf("START decoded as %q with %d headers", sp.Status, len(sp.Headers))
				}
				for j, h := range golden.Headers {
					if sp.Headers[j][0] != latin1(h[0]) || sp.Headers[j][1] != latin1(h[1]) {
						t.Fatalf("header %d decoded as %q: %q", j, sp.Headers[j][0], sp.Headers[j][1])
					}
				}
			case File:
				fp, err := ParseFile(f.Payload)
				if err != nil || fp != *golden.File {
					t.Fatalf("FILE decoded as %+v, %v", fp, err)
				}
			case Credit:
				n, err := ParseCredit(f.Payload)
				if err != nil || n != *golden.Credit {
					t.Fatalf("CREDIT decoded as %d, %v", n, err)
				}
			case CtlFromW:
				pid, err := ParseReady(f.Payload)
				if err != nil || pid != 12345 {
					t.Fatalf("READY decoded as pid %d, %v", pid, err)
				}
			}
		})
	}
}
