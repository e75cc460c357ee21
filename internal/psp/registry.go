package psp

import (
	"regexp"
	"slices"
	"sync"

	"github.com/opencashier/cashier/internal/errs"
)

// Registry holds the providers the cashier is configured with, by name.
// It is safe for concurrent use.
type Registry struct {
	mu        sync.RWMutex
	providers map[string]Provider
}

// NewRegistry returns a registry holding the given providers. It returns
// the errors of Register.
func NewRegistry(providers ...Provider) (*Registry, error) {
	r := &Registry{providers: map[string]Provider{}}
	for _, p := range providers {
		if err := r.Register(p); err != nil {
			return nil, err
		}
	}
	return r, nil
}

var providerName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// ValidName reports whether name can name a provider: 1 to 32 lower-case
// letters, digits, '-' and '_', starting with a letter. The name appears in
// the webhook path /psp/{name}/webhook.
func ValidName(name string) bool { return providerName.MatchString(name) }

// Register adds p under p.Name(). It returns an errs.Invalid error for a
// name that is not ValidName and an errs.Conflict error if the name is
// taken.
func (r *Registry) Register(p Provider) error {
	const op = "psp.Registry.Register"
	name := p.Name()
	if !ValidName(name) {
		return errs.Ef(errs.Invalid, op, "provider name %q must be 1-32 lower-case letters, digits, '-' or '_'", name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.providers == nil {
		r.providers = map[string]Provider{}
	}
	if _, taken := r.providers[name]; taken {
		return errs.Ef(errs.Conflict, op, "provider %q is registered twice", name)
	}
	r.providers[name] = p
	return nil
}

// Get returns the provider with the given name. It returns an errs.NotFound
// error if there is none.
func (r *Registry) Get(name string) (Provider, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, ok := r.providers[name]
	if !ok {
		return nil, errs.Ef(errs.NotFound, "psp.Registry.Get", "no payment provider is named %q", name)
	}
	return p, nil
}

// Names returns the registered names in order.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.providers))
	for n := range r.providers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
