//! A small dense simplex for `maximise c.x subject to A x <= b, x >= 0` with
//! `b >= 0`, so the origin is feasible and no first phase is needed. Enough
//! for a day's arbitrage optimum (a few dozen variables); Bland's rule keeps
//! it from cycling on the degenerate vertices such problems are full of.

const EPS: f64 = 1e-9;

/// The optimum value and a solution; None when the problem is unbounded
/// (which a battery's, with every flow capped by power, never is).
pub fn maximise(c: &[f64], a: &[Vec<f64>], b: &[f64]) -> Option<(f64, Vec<f64>)> {
    let (m, n) = (a.len(), c.len());
    let width = n + m + 1;
    // Rows 0..m are constraints with slacks; row m is the objective.
    let mut t = vec![vec![0.0; width]; m + 1];
    for (i, row) in a.iter().enumerate() {
        t[i][..n].copy_from_slice(&row[..n]);
        t[i][n + i] = 1.0;
        t[i][width - 1] = b[i].max(0.0);
    }
    for j in 0..n {
        t[m][j] = -c[j];
    }
    let mut basis: Vec<usize> = (n..n + m).collect();
    // Bland's rule terminates; the bound only guards against a bug.
    for _ in 0..10_000 {
        let Some(enter) = (0..n + m).find(|&j| t[m][j] < -EPS) else {
            let mut x = vec![0.0; n];
            for (i, &v) in basis.iter().enumerate() {
                if v < n {
                    x[v] = t[i][width - 1];
                }
            }
            return Some((t[m][width - 1], x));
        };
        let mut leave: Option<(usize, f64)> = None;
        for i in 0..m {
            if t[i][enter] > EPS {
                let ratio = t[i][width - 1] / t[i][enter];
                let better = match leave {
                    None => true,
                    Some((l, r)) => ratio < r - EPS || (ratio <= r + EPS && basis[i] < basis[l]),
                };
                if better {
                    leave = Some((i, ratio));
                }
            }
        }
        let (row, _) = leave?;
        let pivot = t[row][enter];
        for v in t[row].iter_mut() {
            *v /= pivot;
        }
        let pivot_row = t[row].clone();
        for (i, r) in t.iter_mut().enumerate() {
            if i != row && r[enter].abs() > 0.0 {
                let f = r[enter];
                for (v, p) in r.iter_mut().zip(&pivot_row) {
                    *v -= f * p;
                }
            }
        }
        basis[row] = enter;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_textbook_problem_has_its_known_optimum() {
        // max 3x + 5y: x <= 4, 2y <= 12, 3x + 2y <= 18 -> 36 at (2, 6).
        let (v, x) = maximise(
            &[3.0, 5.0],
            &[vec![1.0, 0.0], vec![0.0, 2.0], vec![3.0, 2.0]],
            &[4.0, 12.0, 18.0],
        )
        .unwrap();
        assert!((v - 36.0).abs() < 1e-9, "{v}");
        assert!(
            (x[0] - 2.0).abs() < 1e-9 && (x[1] - 6.0).abs() < 1e-9,
            "{x:?}"
        );
    }

    #[test]
    fn nothing_to_gain_stays_at_the_origin_and_unbounded_is_none() {
        let (v, _) = maximise(&[-1.0, -2.0], &[vec![1.0, 1.0]], &[5.0]).unwrap();
        assert_eq!(v, 0.0);
        assert!(maximise(&[1.0, 0.0], &[vec![-1.0, 1.0]], &[1.0]).is_none());
    }
}
