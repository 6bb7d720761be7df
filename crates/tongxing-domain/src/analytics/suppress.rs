//! Privacy of aggregates: a table of counts as an analyst may see it. Every cell under the
//! threshold is suppressed (primary suppression), and then more cells (complementary
//! suppression) until no row or column — totals included — has exactly one suppressed entry:
//! a single hidden entry could be recovered by subtracting the shown ones from the total.

use serde::Serialize;

/// A table of counts with its row, column and grand totals, each cell shown or suppressed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suppressed {
    /// `None`: suppressed.
    pub cells: Vec<Vec<Option<u64>>>,
    pub row_totals: Vec<Option<u64>>,
    pub column_totals: Vec<Option<u64>>,
    pub total: Option<u64>,
}

/// The table unchanged (for roles that may see small counts).
pub fn unsuppressed(cells: &[Vec<u64>]) -> Suppressed {
    let cols = cells.first().map_or(0, Vec::len);
    let row_totals: Vec<u64> = cells.iter().map(|r| r.iter().sum()).collect();
    let column_totals: Vec<u64> = (0..cols).map(|c| cells.iter().map(|r| r[c]).sum()).collect();
    Suppressed {
        cells: cells.iter().map(|r| r.iter().copied().map(Some).collect()).collect(),
        total: Some(row_totals.iter().sum()),
        row_totals: row_totals.into_iter().map(Some).collect(),
        column_totals: column_totals.into_iter().map(Some).collect(),
    }
}

/// Suppresses every entry under `threshold` (cells and totals), then complements: while a row
/// or column (with its total) has exactly one suppressed entry, the smallest shown cell of that
/// line is suppressed too (its total when no cell is left). Rows must have equal lengths.
pub fn suppress(cells: &[Vec<u64>], threshold: u64) -> Suppressed {
    let rows = cells.len();
    let cols = cells.first().map_or(0, Vec::len);
    // The table extended by its totals: row r's total at [r][cols], column c's at [rows][c].
    let mut v = vec![vec![0u64; cols + 1]; rows + 1];
    for (r, row) in cells.iter().enumerate() {
        for (c, &x) in row.iter().enumerate().take(cols) {
            v[r][c] = x;
            v[r][cols] += x;
            v[rows][c] += x;
            v[rows][cols] += x;
        }
    }
    let mut hidden: Vec<Vec<bool>> = v.iter().map(|row| row.iter().map(|&x| x < threshold).collect()).collect();
    // Each line is a relation: its entries but the last add up to the last.
    let lines: Vec<Vec<(usize, usize)>> = (0..=rows)
        .map(|r| (0..=cols).map(|c| (r, c)).collect())
        .chain((0..=cols).map(|c| (0..=rows).map(|r| (r, c)).collect()))
        .collect();
    loop {
        let mut changed = false;
        for line in &lines {
            if line.iter().filter(|&&(r, c)| hidden[r][c]).count() != 1 {
                continue;
            }
            let (total, parts) = line.split_last().expect("a line has a total");
            let pick = parts
                .iter()
                .filter(|&&(r, c)| !hidden[r][c])
                .min_by_key(|&&(r, c)| v[r][c])
                .copied()
                .or((!hidden[total.0][total.1]).then_some(*total));
            if let Some((r, c)) = pick {
                hidden[r][c] = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let show = |r: usize, c: usize| (!hidden[r][c]).then_some(v[r][c]);
    Suppressed {
        cells: (0..rows).map(|r| (0..cols).map(|c| show(r, c)).collect()).collect(),
        row_totals: (0..rows).map(|r| show(r, cols)).collect(),
        column_totals: (0..cols).map(|c| show(rows, c)).collect(),
        total: show(rows, cols),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Every relation (row with its total, column with its total, the totals row and column)
    /// has no suppressed entry or at least two: none can be recovered by subtraction.
    fn no_single_hidden(s: &Suppressed) -> bool {
        let rows = s.cells.len();
        let cols = s.column_totals.len();
        let entry = |r: usize, c: usize| match (r == rows, c == cols) {
            (false, false) => s.cells[r][c],
            (false, true) => s.row_totals[r],
            (true, false) => s.column_totals[c],
            (true, true) => s.total,
        };
        let rows_ok = (0..=rows).all(|r| (0..=cols).filter(|&c| entry(r, c).is_none()).count() != 1);
        let cols_ok = (0..=cols).all(|c| (0..=rows).filter(|&r| entry(r, c).is_none()).count() != 1);
        rows_ok && cols_ok
    }

    fn all_shown(s: &Suppressed) -> Vec<u64> {
        s.cells
            .iter()
            .flatten()
            .chain(&s.row_totals)
            .chain(&s.column_totals)
            .chain([&s.total])
            .flatten()
            .copied()
            .collect()
    }

    #[test]
    fn a_small_cell_and_its_complements() {
        // Row 0 holds a 2: suppressed; its row then needs a second: the smallest other cell (10).
        // Column 0 and column 1 each then hold one: their smallest other cells follow.
        let t = vec![vec![2, 10, 30], vec![40, 50, 60], vec![70, 80, 90]];
        let s = suppress(&t, 5);
        assert_eq!(s.cells[0][0], None);
        assert_eq!(s.cells[0][1], None);
        assert_eq!(s.cells[1][0], None, "column 0's complement: 40, the smallest shown");
        assert_eq!(s.cells[1][1], None, "column 1's complement: 50");
        assert_eq!(s.cells[0][2], Some(30));
        assert_eq!(s.total, Some(432));
        assert!(no_single_hidden(&s));
        assert!(all_shown(&s).iter().all(|&x| x >= 5));
    }

    #[test]
    fn nothing_small_nothing_hidden() {
        let t = vec![vec![5, 6], vec![7, 8]];
        assert_eq!(suppress(&t, 5), unsuppressed(&t));
    }

    #[test]
    fn a_single_row_hides_its_totals_too() {
        // One row: a column total equals its cell, so it is suppressed with it.
        let s = suppress(&[vec![3, 20, 30]], 5);
        assert_eq!(s.cells[0][0], None);
        assert_eq!(s.column_totals[0], None);
        assert!(no_single_hidden(&s));
    }

    proptest! {
        #[test]
        fn no_cell_under_the_threshold_and_none_recoverable(
            rows in 1usize..6, cols in 1usize..6, seed in proptest::collection::vec(0u64..40, 36), k in 1u64..10,
        ) {
            let t: Vec<Vec<u64>> = (0..rows).map(|r| (0..cols).map(|c| seed[r * 6 + c]).collect()).collect();
            let s = suppress(&t, k);
            prop_assert!(all_shown(&s).iter().all(|&x| x >= k));
            prop_assert!(no_single_hidden(&s));
            // What is shown is the truth.
            for (shown, truth) in s.cells.iter().flatten().zip(t.iter().flatten()) {
                if let Some(x) = shown { prop_assert_eq!(*x, *truth); }
            }
        }
    }
}
