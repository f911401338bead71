package gateway

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
)

// Tenant is a client of the gateway, known by the SHA-256 of its API key.
type Tenant struct {
	Name      string
	KeySHA256 [32]byte
}

// HashKey returns the SHA-256 of an API key, as tenants store it.
func HashKey(key string) [32]byte { return sha256.Sum256([]byte(key)) }

// ParseKeyHash parses a hex SHA-256.
func ParseKeyHash(s string) ([32]byte, error) {
	var h [32]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return h, fmt.Errorf("not a hex SHA-256 (64 hex digits)")
	}
	copy(h[:], b)
	return h, nil
}

// tenantSet authenticates API keys. It compares the key's hash with every
// tenant's in constant time, so the time taken says nothing about which
// tenant, or how much of a hash, matched.
type tenantSet []Tenant

func (ts tenantSet) lookup(key string) (string, bool) {
	h := HashKey(key)
	found := -1
	for i := range ts {
		if subtle.ConstantTimeCompare(h[:], ts[i].KeySHA256[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return "", false
	}
	return ts[found].Name, true
}
