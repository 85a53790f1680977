#include "io/durable_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "src/core/check.h"

namespace fs = std::filesystem;

namespace iris::io {

namespace {
std::string errno_text() { return std::strerror(errno); }

// Opens `p` read-only (a directory with O_DIRECTORY) and fsyncs it; the fsync status is returned.
bool open_and_fsync(const fs::path& p, bool directory) {
  const fs::path target = p.empty() ? fs::path(".") : p;
  const int fd = ::open(target.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  IRIS_USER_CHECK(fd >= 0, "cannot open {} to sync it: {}", target.string(), errno_text());
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}
}  // namespace

void close_durably(std::FILE*& f, const fs::path& path) {
  bool ok = std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
  std::string why = ok ? "" : errno_text();
  ok = (std::fclose(f) == 0) && ok;
  if (why.empty() && !ok) why = errno_text();
  f = nullptr;
  IRIS_USER_CHECK(ok, "cannot write {}: {}", path.string(), why);
}

void fsync_file(const fs::path& path) {
  IRIS_USER_CHECK(open_and_fsync(path, false), "fsync of {} failed (disk full or I/O error?): {}", path.string(),
                  errno_text());
}

void fsync_directory(const fs::path& dir) { open_and_fsync(dir, true); }

void rename_durably(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::rename(from, to, ec);
  IRIS_USER_CHECK(!ec, "cannot rename {} to {}: {}", from.string(), to.string(), ec.message());
  fsync_directory(to.parent_path());
}

void write_text_durably(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  IRIS_USER_CHECK(f != nullptr, "cannot create {}: {}", tmp.string(), errno_text());
  if (std::fwrite(text.data(), 1, text.size(), f) != text.size()) {
    const std::string why = errno_text();
    std::fclose(f);
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw UserError(fmt::format("cannot write {}: {}", tmp.string(), why));
  }
  try {
    close_durably(f, tmp);
  } catch (const UserError&) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw;
  }
  rename_durably(tmp, path);
}

}  // namespace iris::io
