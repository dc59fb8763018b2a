//! The directories the record makes stay inside the root: a link in the root's /var is
//! resolved there or refused, never followed to the host.

use super::*;
use crate::root::Root;

#[test]
fn the_stage_lock_is_not_made_through_a_link_out_of_the_root() {
    let d = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("var")).unwrap();
    std::os::unix::fs::symlink(outside.path(), d.path().join("var/db")).unwrap();
    let root = Root::new(d.path());
    assert!(lock_stage(&StateDir::new(&root, false)).is_err());
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
}

#[test]
fn the_local_modules_mark_is_made_inside_the_root() {
    let d = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("var")).unwrap();
    // Linux's /var/run -> /run, here an absolute link to a host directory.
    std::os::unix::fs::symlink(outside.path(), d.path().join("var/run")).unwrap();
    let root = Root::new(d.path());
    assert!(!local_modules_ran(&root));
    note_local_modules_run(&root).unwrap();
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    assert!(local_modules_ran(&root));
    let inside = d
        .path()
        .join(outside.path().strip_prefix("/").unwrap())
        .join("wisp/local-modules-ran");
    assert!(inside.is_file());
}
