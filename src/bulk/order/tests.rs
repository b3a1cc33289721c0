use super::*;
use serde_json::json;

fn row(date: &str) -> Result<Value, RowError> {
    Ok(json!({"usageDate": date}))
}

/// Adds `rows` (line = position + 1) to windows of `size`, skipping `skip`; answers the lines
/// handed on, in order, with the error messages of rejected rows.
fn order(size: u64, skip: u64, rows: Vec<Result<Value, RowError>>) -> Vec<(u64, String)> {
    let dir = std::env::temp_dir().join(format!("tmf635-order-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let path = dir.join("window");
    let mut out = Vec::new();
    {
        let mut window = Window::new(size, skip, path.clone());
        let mut hand_on = |line: u64, row: Result<Value, RowError>| {
            out.push((line, row.err().map(|e| e.message).unwrap_or_default()));
            Ok(())
        };
        for (i, row) in rows.into_iter().enumerate() {
            if window.add(i as u64 + 1, row).ok().expect("added") {
                window.drain(&mut hand_on).ok().expect("drained");
            }
        }
        window.drain(&mut hand_on).ok().expect("drained");
    }
    assert!(!path.exists(), "the window's file is removed");
    let _ = std::fs::remove_dir_all(dir);
    out
}

fn lines(handed: &[(u64, String)]) -> Vec<u64> {
    handed.iter().map(|(line, _)| *line).collect()
}

fn rows() -> Vec<Result<Value, RowError>> {
    vec![
        row("2026-11-03T00:00:00Z"),
        row("2026-11-01T00:00:00Z"),
        Err(RowError::at("status", "status is wrong")),
        row("2026-11-02T00:00:00Z"),
        Ok(json!({"status": "received"})),
        row("2026-11-01T00:00:00+01:00"),
        row("2026-11-01T00:00:00Z"),
    ]
}

#[test]
fn each_window_is_handed_on_in_date_order_rows_without_one_first() {
    let handed = order(4, 0, rows());
    // Lines 1-4, then 5-7: each window by date, then line; an error or no date sorts first.
    assert_eq!(lines(&handed), vec![3, 2, 4, 1, 5, 6, 7]);
    assert_eq!(handed[0].1, "status is wrong");
    assert!(handed[1..].iter().all(|(_, message)| message.is_empty()));
    // One window holding the file: the whole file in order.
    assert_eq!(lines(&order(100, 0, rows())), vec![3, 5, 6, 2, 7, 4, 1]);
}

#[test]
fn a_resumed_window_skips_the_rows_first_in_its_order() {
    for size in [2, 3, 4, 100] {
        let whole = lines(&order(size, 0, rows()));
        for skip in 0..=7 {
            let resumed = lines(&order(size, skip, rows()));
            assert_eq!(
                resumed,
                whole[skip as usize..],
                "window {size}, skip {skip}"
            );
        }
    }
}

#[test]
fn an_error_keeps_its_attribute() {
    let dir = std::env::temp_dir().join(format!("tmf635-order-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let mut window = Window::new(10, 0, dir.join("window"));
    assert!(!window
        .add(1, Err(RowError::at("id", "id is wrong")))
        .ok()
        .expect("added"));
    let mut errors = Vec::new();
    window
        .drain(|_, row| {
            errors.push(row.expect_err("an error"));
            Ok(())
        })
        .ok()
        .expect("drained");
    assert_eq!(errors[0].attribute.as_deref(), Some("id"));
    assert_eq!(errors[0].message, "id is wrong");
    drop(window);
    let _ = std::fs::remove_dir_all(dir);
}
