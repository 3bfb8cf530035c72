package compress

import (
	"fmt"
	"io"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// NewDecoder reads a body encoded with coding ("gzip", "zstd", "br"; ""
// for identity), as a client of the filter does: for the tests and tools
// that check what it sent. Close releases the decoder, not r.
func NewDecoder(coding string, r io.Reader) (io.ReadCloser, error) {
	switch coding {
	case "":
		return io.NopCloser(r), nil
	case "gzip":
		return gzip.NewReader(r)
	case "zstd":
		d, err := zstd.NewReader(r)
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	case "br":
		return io.NopCloser(brotli.NewReader(r)), nil
	}
	return nil, fmt.Errorf("compress: no decoder for %q", coding)
}
