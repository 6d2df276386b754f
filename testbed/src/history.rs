//! Reading a history file a test had written (by the collector or by hand).

use openmosix_store::History;

/// The number of rows of nodes 1, 2 and 3 in the samples table or view `table`
/// (`samples`: plain rows only; `samples_all`: packed blocks too).
pub fn sample_counts(h: &History, table: &str) -> [i64; 3] {
    let mut out = [0; 3];
    for (node, count) in (1i64..).zip(out.iter_mut()) {
        *count = h
            .connection()
            .query_row(
                &format!("SELECT count(*) FROM {table} WHERE node = ?1"),
                [node],
                |r| r.get(0),
            )
            .expect("count");
    }
    out
}
