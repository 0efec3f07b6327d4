package snapshot

import (
	"errors"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// zstdChunk is the raw size of each zstd frame the parallel writer makes. Frames are
// independent, so a chunk loses the matches it would have found in the one before: with
// zstdWindow (1 MiB) that is the stream encoder's loss at every window anyway.
const zstdChunk = 1 << 20

// parallelZstd compresses a stream as a sequence of independent zstd frames, zstdConcurrency
// at a time, and writes them in order to w: a zstd stream (the format allows concatenated
// frames; any zstd decoder reads it). klauspost's stream encoder overlaps only its match
// finding and entropy coding, one block after the other, so the match finder of one goroutine
// set the pace (measured: bench/results/throughput-2026-12-05.md); here each core compresses
// its own chunk.
//
// Buffers are a fixed set reused for the whole stream: zstdConcurrency+2 pairs of a raw chunk
// and its frame (one filling, zstdConcurrency compressing, one being written).
type parallelZstd struct {
	enc   *zstd.Encoder
	w     io.Writer
	cur   *zstdJob      // the chunk Write fills
	free  chan *zstdJob // buffers not in use
	queue chan *zstdJob // chunks in stream order, to the writing goroutine
	done  chan struct{} // closed when the writing goroutine ends

	sent bool // a chunk was sent
	shut bool // Close was called

	mu  sync.Mutex
	err error // the first write error; later Writes and Close return it
}

type zstdJob struct {
	src, dst []byte
	ready    chan struct{} // closed when dst holds src's frame
}

func newParallelZstd(w io.Writer) (*parallelZstd, error) {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstdLevel),
		zstd.WithEncoderConcurrency(zstdConcurrency),
		zstd.WithWindowSize(zstdWindow),
		zstd.WithEncoderCRC(true))
	if err != nil {
		return nil, err
	}
	n := zstdConcurrency + 2
	z := &parallelZstd{enc: enc, w: w, free: make(chan *zstdJob, n), queue: make(chan *zstdJob, zstdConcurrency), done: make(chan struct{})}
	for range n {
		z.free <- &zstdJob{src: make([]byte, 0, zstdChunk), dst: make([]byte, 0, enc.MaxEncodedSize(zstdChunk))}
	}
	go z.writeOut(z.queue)
	return z, nil
}

// writeOut writes the frames in order as they are ready and hands their buffers back.
func (z *parallelZstd) writeOut(queue <-chan *zstdJob) {
	defer close(z.done)
	for j := range queue {
		<-j.ready
		if z.failed() == nil {
			if _, err := z.w.Write(j.dst); err != nil {
				z.fail(err)
			}
		}
		j.src, j.dst = j.src[:0], j.dst[:0]
		z.free <- j
	}
}

func (z *parallelZstd) fail(err error) {
	z.mu.Lock()
	if z.err == nil {
		z.err = err
	}
	z.mu.Unlock()
}

func (z *parallelZstd) failed() error {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.err
}

func (z *parallelZstd) Write(p []byte) (int, error) {
	if z.shut {
		return 0, errors.New("zstd: write after close")
	}
	n := 0
	for len(p) > 0 {
		if err := z.failed(); err != nil {
			return n, err
		}
		if z.cur == nil {
			z.cur = <-z.free
		}
		k := min(len(p), zstdChunk-len(z.cur.src))
		z.cur.src = append(z.cur.src, p[:k]...)
		n, p = n+k, p[k:]
		if len(z.cur.src) == zstdChunk {
			z.send()
		}
	}
	return n, nil
}

// send compresses the current chunk on its own goroutine and queues it for writing.
func (z *parallelZstd) send() {
	j := z.cur
	z.cur, z.sent = nil, true
	j.ready = make(chan struct{})
	z.queue <- j // blocks while zstdConcurrency chunks are ahead: the stream's back-pressure
	go func() {
		j.dst = z.enc.EncodeAll(j.src, j.dst)
		close(j.ready)
	}()
}

// Close compresses what is left (an empty stream is one empty frame), waits until every frame
// is written and returns the first error. It does not close w.
func (z *parallelZstd) Close() error {
	if z.shut {
		return z.failed()
	}
	z.shut = true
	if z.cur == nil {
		z.cur = <-z.free
	}
	if len(z.cur.src) > 0 || !z.sent {
		z.send()
	}
	close(z.queue)
	<-z.done
	z.enc.Close()
	return z.failed()
}
