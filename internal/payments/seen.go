package payments

import "sync"

// seenSize bounds how many payments a Service remembers.
const seenSize = 4096

// seen remembers the latest state of the payments this process read or
// wrote lately, so that a provider's snapshot can be decided without
// reading the payment again (the start answer and the webhooks of one
// payment come within moments of each other).
//
// What it remembers may be behind the database (another process changed
// the payment), never ahead of it. That is enough: a payment only moves
// forward, so a snapshot that changes nothing in a remembered state changes
// nothing in the current one; and a change decided on a remembered state
// is written only if the payment is still in it (its updated_at), else
// decided again on the locked row.
type seen struct {
	mu   sync.Mutex
	m    map[string]Payment
	ring [seenSize]string // ids in the order they were added, for eviction
	next int
}

func newSeen() *seen { return &seen{m: make(map[string]Payment, seenSize)} }

// get returns the remembered state of payment id.
func (c *seen) get(id string) (Payment, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.m[id]
	return p, ok
}

// put remembers p unless a later state of it is remembered already (every
// change moves updated_at forward).
func (c *seen) put(p Payment) {
	if p.ID == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[p.ID]; ok {
		if p.UpdatedAt.After(old.UpdatedAt) {
			c.m[p.ID] = p
		}
		return
	}
	if evict := c.ring[c.next]; evict != "" {
		delete(c.m, evict)
	}
	c.ring[c.next] = p.ID
	c.next = (c.next + 1) % seenSize
	c.m[p.ID] = p
}
