package protocol

import (
	"encoding/binary"
	"unicode/utf8"
)

// The environ travels as a Python marshal dict of str → str, so the worker
// decodes it with one marshal.loads call (C code) instead of parsing it in
// Python. Only the marshal subset below is produced; its layout is stable
// across CPython versions (marshal format 4, CPython 3.4+).
const (
	marshalDict       = '{'
	marshalNull       = '0' // ends a dict
	marshalShortASCII = 'z' // u8 length, ASCII bytes
	marshalASCII      = 'a' // u32 LE length, ASCII bytes
	marshalUnicode    = 'u' // u32 LE length, UTF-8 bytes
	marshalTrue       = 'T'
	marshalFalse      = 'F'
)

// BeginDict starts a marshal dict in b.
func BeginDict(b []byte) []byte { return append(b, marshalDict) }

// EndDict closes a dict started with BeginDict.
func EndDict(b []byte) []byte { return append(b, marshalNull) }

// AppendItem appends one key/value pair; both are byte strings that the
// worker sees as str decoded from latin-1 (PEP 3333's "native strings").
func AppendItem(b []byte, key, value string) []byte {
	b = AppendLatin1(b, key)
	return AppendLatin1(b, value)
}

// AppendBoolItem appends key → True/False.
func AppendBoolItem(b []byte, key string, v bool) []byte {
	b = AppendLatin1(b, key)
	if v {
		return append(b, marshalTrue)
	}
	return append(b, marshalFalse)
}

// AppendLatin1 appends s as a marshal str whose code points are s's bytes.
func AppendLatin1(b []byte, s string) []byte {
	high := 0
	if !isASCII(s) {
		for i := 0; i < len(s); i++ {
			if s[i] >= utf8.RuneSelf {
				high++
			}
		}
	}
	if high == 0 {
		if len(s) < 256 {
			b = append(b, marshalShortASCII, byte(len(s)))
		} else {
			b = append(b, marshalASCII)
			b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
		}
		return append(b, s...)
	}
	// Bytes 0x80–0xFF are the code points U+0080–U+00FF: two UTF-8 bytes each.
	b = append(b, marshalUnicode)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s)+high))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < utf8.RuneSelf {
			b = append(b, c)
		} else {
			b = append(b, 0xC0|c>>6, 0x80|c&0x3F)
		}
	}
	return b
}

// isASCII reports whether every byte of s is below 0x80, testing eight at a
// time: the environ's strings nearly always are, and a byte-by-byte count was
// half of its encoding time.
func isASCII(s string) bool {
	for len(s) >= 8 {
		if binary.LittleEndian.Uint64([]byte(s[:8]))&0x8080808080808080 != 0 {
			return false
		}
		s = s[8:]
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
