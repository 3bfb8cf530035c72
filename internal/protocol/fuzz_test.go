package protocol

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"testing"
)

// FuzzDecodeFrames feeds arbitrary bytes to the decoders the master runs on
// what a worker sends: they may refuse, never panic, and what they accept
// re-encodes to the same bytes. Seeds: testdata/fuzz/FuzzDecodeFrames and the
// golden vectors.
func FuzzDecodeFrames(f *testing.F) {
	for _, v := range goldenVectors() {
		f.Add(v.encode())
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, byte(Data), 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		frames, err := DecodeFrames(data)
		var re []byte
		for _, fr := range frames {
			re = AppendFrame(re, fr.Type, fr.Stream, fr.Payload)
			var sp StartPayload
			switch fr.Type {
			case Start:
				if ParseStart(fr.Payload, &sp) == nil {
					if got := AppendStart(nil, sp.Status, sp.Headers); !bytes.Equal(got, fr.Payload) {
						t.Fatalf("START %q re-encodes as %q", fr.Payload, got)
					}
				}
			case File:
				if fp, err := ParseFile(fr.Payload); err == nil && !bytes.Equal(AppendFile(nil, fp), fr.Payload) {
					t.Fatalf("FILE %x re-encodes differently", fr.Payload)
				}
			case Credit:
				_, _ = ParseCredit(fr.Payload)
			case CtlFromW:
				_, _ = ParseReady(fr.Payload)
			}
		}
		if err == nil && !bytes.Equal(re, data) {
			t.Fatalf("accepted %s, re-encoded %s", hex.EncodeToString(data), hex.EncodeToString(re))
		}
		if !bytes.HasPrefix(data, re) {
			t.Fatalf("decoded frames are not a prefix of the input")
		}
		// The streaming reader agrees with DecodeFrames.
		br := bufio.NewReaderSize(bytes.NewReader(data), 16)
		var scratch []byte
		for i := 0; ; i++ {
			h, err := ReadHeader(br)
			if err != nil {
				if i < len(frames) {
					t.Fatalf("ReadHeader failed at frame %d of %d: %v", i, len(frames), err)
				}
				return
			}
			p, err := ReadPayload(br, h, &scratch)
			if err != nil {
				if i < len(frames) && len(frames[i].Payload) <= MaxBufferedPayload {
					t.Fatalf("ReadPayload failed at frame %d: %v", i, err)
				}
				return
			}
			if i >= len(frames) || !bytes.Equal(p, frames[i].Payload) {
				t.Fatalf("streaming reader decoded frame %d differently", i)
			}
		}
	})
}
