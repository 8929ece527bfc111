/// The SQLite queue's schema, one step per version, applied in order at open (each step in
/// one transaction with its row in `schema_migrations`). Never edit a released step: add one.
enum SQLiteMigrations {
    static let steps: [(version: Int, statements: [String])] = [
        (1, [
            """
            CREATE TABLE jobs (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT NOT NULL UNIQUE,
                state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'cancelled')),
                spec BLOB NOT NULL,
                report BLOB,
                callback TEXT,
                attempts INTEGER NOT NULL DEFAULT 0,
                lease_token TEXT,
                lease_until INTEGER,
                worker TEXT,
                took_over INTEGER NOT NULL DEFAULT 0,
                cancelled_from TEXT,
                enqueued_at INTEGER NOT NULL,
                finished_at INTEGER
            )
            """,
            "CREATE INDEX jobs_queued ON jobs (seq) WHERE state = 'queued'",
            "CREATE INDEX jobs_leases ON jobs (lease_until) WHERE state = 'running'",
            "CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL",
        ]),
    ]
}
