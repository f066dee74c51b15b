package stream

// Steps between yields of the speed layer's long loops (see package
// stream/internal/yield), sized from the per-step costs measured at a
// million users; apply yields after every applyChunk events.
const (
	// yieldRecords: records decoded (≈0.4–0.6 µs each).
	yieldRecords = 128
	// yieldUsers: users encoded at a checkpoint (≈0.5 µs each), loaded
	// or rebased.
	yieldUsers = 128
)
