package sigv4

import (
	"crypto/sha256"
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

// signingKey is a derived key and what it was derived from.
type signingKey struct {
	secret, date, region, service string
	key                           [sha256.Size]byte
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

func (c *keyCache) get(secret string, day []byte, region, service string, buf []byte) ([sha256.Size]byte, []byte) {
	// string(day) in a comparison does not allocate.
	if k := c.last.Load(); k != nil && k.date == string(day) && k.region == region && k.service == service && k.secret == secret {
		return k.key, buf
	}
	date := string(day)
	id := signingKeyID{secret, date, region, service}
	c.mu.Lock()
	k, ok := c.keys[id]
	c.mu.Unlock()
	if !ok {
		k = &signingKey{secret: secret, date: date, region: region, service: service}
		k.key, buf = deriveKey(secret, date, region, service, buf)
		c.mu.Lock()
		if c.keys == nil || len(c.keys) >= maxCachedKeys {
			c.keys = make(map[signingKeyID]*signingKey)
		}
		c.keys[id] = k
		c.mu.Unlock()
	}
	c.last.Store(k)
	return k.key, buf
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
