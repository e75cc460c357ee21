package loadtest

import (
	"bufio"
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencashier/cashier/internal/errs"
)

// Memory is a process's resident memory, in bytes.
type Memory struct {
	RSS int64 // VmRSS: resident now
	HWM int64 // VmHWM: the highest resident size since the process started
}

// ReadMemory reads VmRSS and VmHWM from /proc/{pid}/status (Linux). It
// returns errs.NotFound when the process does not exist.
func ReadMemory(pid int) (Memory, error) {
	const op = "loadtest.ReadMemory"
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if os.IsNotExist(err) {
		return Memory{}, errs.Ef(errs.NotFound, op, "no process %d", pid)
	}
	if err != nil {
		return Memory{}, errs.Wrap(op, err)
	}
	defer f.Close()
	var m Memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != "VmRSS" && name != "VmHWM" {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return Memory{}, errs.Ef(errs.Internal, op, "%s: %q: %v", name, value, err)
		}
		if name == "VmRSS" {
			m.RSS = kb << 10
		} else {
			m.HWM = kb << 10
		}
	}
	return m, errs.Wrap(op, sc.Err())
}

// MemorySampler reads a process's memory every interval while a run goes
// on and keeps the largest resident size it saw.
type MemorySampler struct {
	pid    int
	mu     sync.Mutex
	peak   int64
	last   Memory
	err    error
	cancel context.CancelFunc
	done   chan struct{}
}

// SampleMemory starts sampling pid every interval until Stop.
func SampleMemory(pid int, every time.Duration) *MemorySampler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &MemorySampler{pid: pid, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			s.sample()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *MemorySampler) sample() {
	m, err := ReadMemory(s.pid)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.err = err
		return
	}
	s.last = m
	s.peak = max(s.peak, m.RSS)
}

// Stop ends the sampling and returns the largest VmRSS seen, the last
// reading (with VmHWM), and the last error, if any reading failed.
func (s *MemorySampler) Stop() (peakRSS int64, last Memory, err error) {
	s.cancel()
	<-s.done
	s.sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak, s.last, s.err
}
