package ctradersim

import (
	"encoding/json"
	"io"

	"github.com/opencashier/cashier/internal/errs"
)

// stateFileVersion is the format version of SaveState's JSON.
const stateFileVersion = 1

type stateFile struct {
	Version int    `json:"version"`
	State   *state `json:"state"`
}

// SaveState writes the simulator's traders (with their balance histories),
// users, links and id counters as JSON. Manager tokens, handoff tokens and
// app sessions are not saved. It returns the writer's error.
func (s *Sim) SaveState(w io.Writer) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(stateFile{Version: stateFileVersion, State: s.st}); err != nil {
		return errs.Wrap("ctradersim.SaveState", err)
	}
	return nil
}

// LoadState replaces the simulator's state with one written by SaveState.
// Managers in the file are kept; manager tokens must be requested again.
// It returns an errs.Invalid error for a file it cannot read.
func (s *Sim) LoadState(r io.Reader) error {
	const op = "ctradersim.LoadState"
	var f stateFile
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return errs.Ef(errs.Invalid, op, "state file: %v", err)
	}
	if f.Version != stateFileVersion || f.State == nil || f.State.Traders == nil || f.State.Users == nil || f.State.Managers == nil {
		return errs.Ef(errs.Invalid, op, "state file has version %d or misses traders, users or managers; want version %d", f.Version, stateFileVersion)
	}
	f.State.initVolatile()
	s.mu.Lock()
	s.st = f.State
	s.mu.Unlock()
	return nil
}
