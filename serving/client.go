package serving

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ErrNotFound is returned (wrapped in an *APIError) for an unknown user.
var ErrNotFound = errors.New("profile not found")

// APIError is a non-200 answer of the lookup API.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("lookup API: %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// Is makes errors.Is(err, ErrNotFound) true for a 404.
func (e *APIError) Is(target error) bool {
	return target == ErrNotFound && e.Status == http.StatusNotFound
}

// Tag is one tag value of a Profile.
type Tag struct {
	Name  string
	Value any // json.Number, string, bool or nil; timestamps are RFC 3339 strings
}

// Tags keep the order the server sent them in (catalog order).
type Tags []Tag

// UnmarshalJSON reads a JSON object keeping its key order.
func (t *Tags) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != json.Delim('{') {
		return fmt.Errorf("tags: want an object, got %v", tok)
	}
	*t = (*t)[:0]
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := tok.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("tag %s: %w", name, err)
		}
		*t = append(*t, Tag{Name: name, Value: v})
	}
	_, err = dec.Token()
	return err
}

// MarshalJSON writes the tags as an object in order.
func (t Tags) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, tag := range t {
		if i > 0 {
			b = append(b, ',')
		}
		k, _ := json.Marshal(tag.Name)
		v, err := json.Marshal(tag.Value)
		if err != nil {
			return nil, fmt.Errorf("tag %s: %w", tag.Name, err)
		}
		b = append(append(append(b, k...), ':'), v...)
	}
	return append(b, '}'), nil
}

// Get returns the named tag's value.
func (t Tags) Get(name string) (any, bool) {
	for _, tag := range t {
		if tag.Name == name {
			return tag.Value, true
		}
	}
	return nil, false
}

// Profile is one profile as the lookup API returns it.
type Profile struct {
	Key       any        `json:"key"` // json.Number or string
	Tags      Tags       `json:"tags"`
	AsOf      time.Time  `json:"as_of"`
	Watermark time.Time  `json:"watermark"`
	Snapshot  *time.Time `json:"snapshot"`
	Catalog   string     `json:"catalog"`
}

// BatchResult is the answer to a batch get.
type BatchResult struct {
	Profiles []Profile `json:"profiles"`
	Missing  []any     `json:"missing"`
}

// Client calls the lookup API at Base (e.g. "http://127.0.0.1:8080").
type Client struct {
	Base  string
	Token string
	// HTTP is the client to use (default: one with a 10 s timeout).
	HTTP *http.Client
}

var defaultHTTP = &http.Client{Timeout: 10 * time.Second}

// Get returns the profile of id (the key's text form).
func (c *Client) Get(ctx context.Context, id string) (*Profile, error) {
	var p Profile
	if err := c.do(ctx, http.MethodGet, "/v1/profiles/"+url.PathEscape(id), nil, &p); err != nil {
		return nil, fmt.Errorf("getting profile %s: %w", id, err)
	}
	return &p, nil
}

// BatchGet returns the profiles of keys (int64 or string values, or their
// text forms) and the keys that have none.
func (c *Client) BatchGet(ctx context.Context, keys []any) (*BatchResult, error) {
	body, err := json.Marshal(struct {
		Keys []any `json:"keys"`
	}{keys})
	if err != nil {
		return nil, fmt.Errorf("encoding batch get: %w", err)
	}
	var r BatchResult
	if err := c.do(ctx, http.MethodPost, "/v1/profiles:batchGet", body, &r); err != nil {
		return nil, fmt.Errorf("batch get of %d keys: %w", len(keys), err)
	}
	return &r, nil
}

func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) error {
	base := strings.TrimSuffix(c.Base, "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = defaultHTTP
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close() //nolint:errcheck // read-only
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return &APIError{Status: resp.StatusCode, Message: e.Error}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("decoding response: %w", err)
	}
	return nil
}
