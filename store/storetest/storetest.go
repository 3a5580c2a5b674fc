// Package storetest makes tampered state files for tests and fuzzing: the
// damage an attacker with write access to the storage folder can do
// without breaking the checksum.
package storetest

import (
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"
)

// WithCRC returns body followed by its CRC-32, as a state file ends.
func WithCRC(body []byte) []byte {
	return binary.LittleEndian.AppendUint32(append([]byte(nil), body...), crc32.ChecksumIEEE(body))
}

// Mutate returns a copy of the state file data with one to three random
// changes to its body (a bit flip, a byte set, inserted or removed, a span
// repeated), and a valid checksum again. The 8-byte header (magic and
// version) is left alone, so the mutations reach the decoder and validation.
func Mutate(data []byte, rng *rand.Rand) []byte {
	const keep = 5 // magic and the one-byte version
	if len(data) < keep+4 {
		return WithCRC(data)
	}
	body := append([]byte(nil), data[:len(data)-4]...)
	for range 1 + rng.IntN(3) {
		if len(body) <= keep {
			break
		}
		i := keep + rng.IntN(len(body)-keep)
		switch rng.IntN(5) {
		case 0:
			body[i] ^= 1 << rng.IntN(8)
		case 1:
			body[i] = byte(rng.IntN(256))
		case 2:
			body = append(body[:i], append([]byte{byte(rng.IntN(256))}, body[i:]...)...)
		case 3:
			body = append(body[:i], body[i+1:]...)
		case 4:
			j := min(len(body), i+1+rng.IntN(16))
			body = append(body[:j], append(append([]byte(nil), body[i:j]...), body[j:]...)...)
		}
	}
	return WithCRC(body)
}
