package serving

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portrait-dev/portrait/batch"
	"github.com/portrait-dev/portrait/internal/clickhouse"
	"github.com/portrait-dev/portrait/schemas"
)

// AdminConfig configures the admin endpoints that run inside the speed
// process.
type AdminConfig struct {
	// Token is the bearer token the admin endpoints require (required:
	// they change state).
	Token string
	// Catalog and Root (the warehouse folder) as for ReconcileConfig.
	Catalog *schemas.Catalog
	Root    string
	// Speed is the speed layer (*stream.Speed): the view, the drift
	// marks and the repairer.
	Speed interface {
		SpeedView
		CauseSource
		Repairer
	}
	// ClickHouse, when set, gets the tag_drift rows; Metrics the gauges.
	ClickHouse *clickhouse.Client
	Metrics    *DriftMetrics
	Logger     *slog.Logger
}

// NewAdminHandler serves
//
//	POST /v1/admin/reconcile?snapshot=T|latest[&repair=1]
//
// which runs Reconcile in this process (writing the report beside the
// snapshot) and answers with the report as JSON. T is RFC 3339 or unix
// seconds. One reconcile runs at a time (409 while one does); 404 when
// there is no such snapshot, 400 for a bad parameter, 422 when the speed
// layer no longer keeps the buckets the snapshot needs or a repair cannot
// help (catalog change), 401 without the token.
func NewAdminHandler(cfg AdminConfig) (http.Handler, error) {
	if cfg.Token == "" {
		return nil, errors.New("admin: a token is required")
	}
	if cfg.Catalog == nil || cfg.Speed == nil || cfg.Root == "" {
		return nil, errors.New("admin: catalog, warehouse root and speed layer are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	a := &admin{cfg: cfg, token: sha256.Sum256([]byte(cfg.Token))}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/admin/reconcile", a.reconcile)
	return mux, nil
}

// WithAdmin routes /v1/admin/ to admin and everything else to h.
func WithAdmin(h, admin http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v1/admin/", admin)
	mux.Handle("/", h)
	return mux
}

// rebaser is the speed layer's lifetime rebase (*stream.Speed).
type rebaser interface {
	Rebase(ctx context.Context, root string) (schemas.Timestamp, bool, error)
}

type admin struct {
	cfg   AdminConfig
	token [sha256.Size]byte
	busy  sync.Mutex
}

func (a *admin) reconcile(w http.ResponseWriter, r *http.Request) {
	got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	sum := sha256.Sum256([]byte(got))
	if subtle.ConstantTimeCompare(sum[:], a.token[:]) != 1 {
		adminError(w, http.StatusUnauthorized, "missing or wrong bearer token")
		return
	}
	snap, err := ParseSnapshotParam(r.URL.Query().Get("snapshot"))
	if err != nil {
		adminError(w, http.StatusBadRequest, "snapshot: "+err.Error())
		return
	}
	repairFlag := false
	if v := r.URL.Query().Get("repair"); v != "" {
		if repairFlag, err = strconv.ParseBool(v); err != nil {
			adminError(w, http.StatusBadRequest, fmt.Sprintf("repair: %q is not a boolean", v))
			return
		}
	}
	if !a.busy.TryLock() {
		adminError(w, http.StatusConflict, "a reconcile is already running")
		return
	}
	defer a.busy.Unlock()
	rep, err := Reconcile(r.Context(), ReconcileConfig{
		Catalog: a.cfg.Catalog, Root: a.cfg.Root, Snapshot: snap,
		Speed: a.cfg.Speed, Causes: a.cfg.Speed, Repair: repairFlag, Repairer: a.cfg.Speed,
		ClickHouse: a.cfg.ClickHouse, Metrics: a.cfg.Metrics, WriteJSON: true, Logger: a.cfg.Logger,
	})
	switch {
	case err == nil:
	case errors.Is(err, batch.ErrNoSnapshot):
		adminError(w, http.StatusNotFound, err.Error())
		return
	case errors.Is(err, ErrNotComparable):
		adminError(w, http.StatusUnprocessableEntity, err.Error())
		return
	default:
		a.cfg.Logger.Error("reconcile failed", "err", err)
		adminError(w, http.StatusInternalServerError, err.Error())
		return
	}
	// As after the scheduled reconcile: once the snapshot is reconciled,
	// lifetime tags are rebased on it (reconciling after a rebase would
	// show them equal by construction).
	if rb, ok := a.cfg.Speed.(rebaser); ok {
		if _, _, err := rb.Rebase(r.Context(), a.cfg.Root); err != nil {
			a.cfg.Logger.Warn("rebasing lifetime tags after reconcile", "err", err)
		}
	}
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		adminError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, buf.Bytes())
}

func adminError(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	writeJSON(w, code, b)
}

// ParseSnapshotParam reads "latest" or "" (0: the newest snapshot), RFC
// 3339, or unix seconds.
func ParseSnapshotParam(s string) (schemas.Timestamp, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "latest" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return schemas.Timestamp(n * 1000), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("%q is neither latest, RFC 3339 nor unix seconds", s)
	}
	return schemas.TimestampOf(t), nil
}

// RequestReconcile asks the admin endpoint at base (http://host:port) to
// reconcile snapshot ("latest", RFC 3339 or unix seconds), and returns
// its report.
func RequestReconcile(ctx context.Context, hc *http.Client, base, token, snapshot string, repair bool) (*Report, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	q := url.Values{"snapshot": {snapshot}}
	if repair {
		q.Set("repair", "1")
	}
	u := strings.TrimRight(base, "/") + "/v1/admin/reconcile?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reconcile via %s: %w", base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reconcile via %s: reading the answer: %w", base, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		return nil, fmt.Errorf("reconcile via %s: %s: %s", base, resp.Status, e.Error)
	}
	var rep Report
	if err := json.Unmarshal(body, &rep); err != nil {
		return nil, fmt.Errorf("reconcile via %s: decoding the report: %w", base, err)
	}
	if rep.Snapshot, err = ParseSnapshotParam(rep.SnapshotText); err != nil {
		return nil, fmt.Errorf("reconcile via %s: report snapshot: %w", base, err)
	}
	return &rep, nil
}
