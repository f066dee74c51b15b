package serving

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAppendString: the plain-ASCII fast path and the escaping fallback
// both write what encoding/json writes.
func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "count_7d", "a b~", `say "hi"`, `back\slash`, "tab\t", "<b>&", "é", "日本", "\x7f", "\xff"} {
		want, err := json.Marshal(s)
		require.NoError(t, err)
		require.Equal(t, string(want), string(appendString([]byte("x"), s))[1:], "%q", s)
	}
}
