// Writing files that must survive a crash: every file that a later run trusts (checkpoints, `latest`,
// datasets, exported weights) is written under a temporary name, flushed and fsynced, renamed into place,
// and its directory fsynced, so a reader sees the old file or the complete new one, never a torn one.
// These are the one set of helpers for that; each throws UserError naming the file on failure (a full
// disk is bad input to the run, exit 2, not a bug).
#pragma once
#include <cstdio>
#include <filesystem>
#include <string>

namespace iris::io {

// fflush + fsync + fclose of `f` (set to null), `path` naming it in the error.
void close_durably(std::FILE*& f, const std::filesystem::path& path);

// fsync of a file written by someone else (HDF5): its data is on disk when this returns.
void fsync_file(const std::filesystem::path& path);

// fsync of a directory, so the renames and creations inside it are on disk. Opening it must work; its
// fsync's own status is not checked (some filesystems refuse fsync on a directory with EINVAL).
void fsync_directory(const std::filesystem::path& dir);

// Renames `from` to `to` (replacing a file; for a directory `to` must not exist) and fsyncs the directory
// of `to`.
void rename_durably(const std::filesystem::path& from, const std::filesystem::path& to);

// Writes `text` to `path` through `path`.tmp, durably (the temporary is removed when writing fails).
void write_text_durably(const std::filesystem::path& path, const std::string& text);

}  // namespace iris::io
