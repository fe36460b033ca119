//! Rebuilds the service when a migration is added or changed: the migrations are embedded in the
//! binary, and a new migration directory is not a source file cargo would otherwise watch.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
