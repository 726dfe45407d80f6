/// mimalloc: Cedar's evaluation and the entity stores allocate and free many small objects per
/// event, which glibc's allocator serves markedly slower once the heap holds a loaded inventory.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    trailcedar::cli::main()
}
