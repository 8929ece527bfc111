/// The PostgreSQL queue's schema, one step per version, applied in order at open: each step in
/// one transaction with its row in `corral_schema_migrations`, under an advisory lock so that
/// servers and workers starting together apply it once. Never edit a released step: add one.
enum PostgresMigrations {
    /// The advisory lock held while migrating (any number; Corral's own).
    static let lockKey: Int64 = 0x636F7272616C // "corral"

    static let steps: [(version: Int, statements: [String])] = [
        (1, [
            """
            CREATE TABLE corral_jobs (
                seq BIGSERIAL PRIMARY KEY,
                id TEXT NOT NULL UNIQUE,
                state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'cancelled')),
                spec BYTEA NOT NULL,
                report BYTEA,
                callback TEXT,
                attempts INTEGER NOT NULL DEFAULT 0,
                lease_token TEXT,
                lease_until TIMESTAMPTZ,
                worker TEXT,
                enqueued_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                finished_at TIMESTAMPTZ
            )
            """,
            "CREATE INDEX corral_jobs_queued ON corral_jobs (seq) WHERE state = 'queued'",
            "CREATE INDEX corral_jobs_leases ON corral_jobs (lease_until) WHERE state = 'running'",
            "CREATE INDEX corral_jobs_finished ON corral_jobs (finished_at) WHERE finished_at IS NOT NULL",
        ]),
    ]
}
