package compress

import (
	"fmt"
	"io"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// encoder is what the three libraries' writers have in common.
type encoder interface {
	io.WriteCloser
	Flush() error
	Reset(io.Writer)
}

// coding is one content-coding the component can produce, with a pool of
// its encoders: building an encoder allocates its tables (hundreds of
// kilobytes for zstd and brotli), reusing one costs a Reset.
type coding struct {
	name string // the Content-Encoding token
	pool sync.Pool
}

func (c *coding) get(w io.Writer) encoder {
	e := c.pool.Get().(encoder)
	e.Reset(w)
	return e
}

func (c *coding) put(e encoder) {
	e.Reset(io.Discard) // let go of the response writer
	c.pool.Put(e)
}

// Levels are per coding because their scales differ.
type levels struct {
	gzip, zstd, brotli int
}

// zstdWindow bounds the window so every browser can decode the stream:
// RFC 9659 asks encoders of the "zstd" content-coding for at most 8 MiB.
const zstdWindow = 8 << 20

func newCoding(name string, lv levels) (*coding, error) {
	c := &coding{name: name}
	switch name {
	case "gzip":
		if _, err := gzip.NewWriterLevel(io.Discard, lv.gzip); err != nil {
			return nil, err
		}
		c.pool.New = func() any {
			w, _ := gzip.NewWriterLevel(io.Discard, lv.gzip)
			return w
		}
	case "zstd":
		opts := []zstd.EOption{
			zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(lv.zstd)),
			zstd.WithWindowSize(zstdWindow),
			zstd.WithEncoderConcurrency(1), // one request, one goroutine
		}
		if _, err := zstd.NewWriter(io.Discard, opts...); err != nil {
			return nil, err
		}
		c.pool.New = func() any {
			w, _ := zstd.NewWriter(io.Discard, opts...)
			return w
		}
	case "br":
		c.pool.New = func() any { return brotli.NewWriterLevel(io.Discard, lv.brotli) }
	default:
		return nil, fmt.Errorf("%q is not gzip, zstd or br", name)
	}
	return c, nil
}
