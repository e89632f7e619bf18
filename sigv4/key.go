package sigv4

import (
	"crypto/sha256"
	"encoding"
	"hash"
	"sync"
	"sync/atomic"
)

// hmacSHA256 computes HMAC-SHA256(key, msg) without allocating: the inner and outer
// pads go through sha256.Sum256 on buffers the caller owns. buf is scratch space that
// is returned grown, so a caller can keep it in a pool.
func hmacSHA256(key []byte, msg []byte, buf []byte) ([sha256.Size]byte, []byte) {
	var k [sha256.BlockSize]byte
	if len(key) > sha256.BlockSize {
		sum := sha256.Sum256(key)
		copy(k[:], sum[:])
	} else {
		copy(k[:], key)
	}
	buf = buf[:0]
	for _, c := range k {
		buf = append(buf, c^0x36)
	}
	buf = append(buf, msg...)
	inner := sha256.Sum256(buf)

	var outer [sha256.BlockSize + sha256.Size]byte
	for i, c := range k {
		outer[i] = c ^ 0x5c
	}
	copy(outer[sha256.BlockSize:], inner[:])
	return sha256.Sum256(outer[:]), buf
}

// signingKey is a derived key and what it was derived from, with the SHA-256 states
// after its HMAC inner and outer pads, so each signature skips hashing the pads.
type signingKey struct {
	secret, date, region, service string
	key                           [sha256.Size]byte
	inner, outer                  []byte // marshaled sha256 states; nil: use hmacSHA256
}

func newSigningKey(secret, date, region, service string) *signingKey {
	k := &signingKey{secret: secret, date: date, region: region, service: service}
	k.key, _ = deriveKey(secret, date, region, service, nil)
	var pad [sha256.BlockSize]byte
	for _, p := range []struct {
		x   byte
		dst *[]byte
	}{{0x36, &k.inner}, {0x5c, &k.outer}} {
		for i := range pad {
			pad[i] = p.x
		}
		for i, c := range k.key {
			pad[i] ^= c
		}
		d := sha256.New()
		d.Write(pad[:])
		m, ok := d.(encoding.BinaryMarshaler)
		if !ok {
			k.inner, k.outer = nil, nil
			break
		}
		state, err := m.MarshalBinary()
		if err != nil {
			k.inner, k.outer = nil, nil
			break
		}
		*p.dst = state
	}
	return k
}

// mac returns HMAC-SHA256(key, msg), resuming the hash from the saved pad states.
// scratch (capacity 64 or more avoids an allocation) is returned for reuse.
func (k *signingKey) mac(msg, scratch []byte) ([sha256.Size]byte, []byte) {
	if k.inner == nil || k.outer == nil {
		return hmacSHA256(k.key[:], msg, scratch)
	}
	d := digestPool.Get().(hash.Hash)
	defer digestPool.Put(d)
	u, ok := d.(encoding.BinaryUnmarshaler)
	if !ok || u.UnmarshalBinary(k.inner) != nil {
		return hmacSHA256(k.key[:], msg, scratch)
	}
	d.Write(msg)
	scratch = d.Sum(scratch[:0])
	if u.UnmarshalBinary(k.outer) != nil {
		return hmacSHA256(k.key[:], msg, scratch)
	}
	d.Write(scratch[:sha256.Size])
	scratch = d.Sum(scratch[:sha256.Size])
	var out [sha256.Size]byte
	copy(out[:], scratch[sha256.Size:])
	return out, scratch
}

// keyCache remembers derived signing keys per (secret, date, region, service): deriving
// one costs four HMACs, more than the rest of a signature. The last key used sits behind
// an atomic pointer, so the common case (one Transport, one service) takes no lock.
type keyCache struct {
	last atomic.Pointer[signingKey]

	mu   sync.Mutex
	keys map[signingKeyID]*signingKey
}

type signingKeyID struct{ secret, date, region, service string }

// maxCachedKeys bounds the cache; a signer that sees more distinct scopes than this is
// unusual, and dropping everything is simpler than an LRU and just as correct.
const maxCachedKeys = 64

func (c *keyCache) get(secret string, day []byte, region, service string) *signingKey {
	// string(day) in a comparison does not allocate.
	if k := c.last.Load(); k != nil && k.date == string(day) && k.region == region && k.service == service && k.secret == secret {
		return k
	}
	date := string(day)
	id := signingKeyID{secret, date, region, service}
	c.mu.Lock()
	k, ok := c.keys[id]
	c.mu.Unlock()
	if !ok {
		k = newSigningKey(secret, date, region, service) // outside the lock: four HMACs
		c.mu.Lock()
		if c.keys == nil || len(c.keys) >= maxCachedKeys {
			c.keys = make(map[signingKeyID]*signingKey)
		}
		c.keys[id] = k
		c.mu.Unlock()
	}
	c.last.Store(k)
	return k
}

// deriveKey computes the SigV4 signing key for a scope.
func deriveKey(secret, date, region, service string, buf []byte) ([sha256.Size]byte, []byte) {
	var k [sha256.Size]byte
	kSecret := make([]byte, 0, 4+len(secret))
	kSecret = append(append(kSecret, "AWS4"...), secret...)
	k, buf = hmacSHA256(kSecret, []byte(date), buf)
	clear(kSecret)
	k, buf = hmacSHA256(k[:], []byte(region), buf)
	k, buf = hmacSHA256(k[:], []byte(service), buf)
	k, buf = hmacSHA256(k[:], []byte("aws4_request"), buf)
	return k, buf
}
