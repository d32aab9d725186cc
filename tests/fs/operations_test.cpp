// stat, directories (list, create, remove), rename.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "io/io_test_util.hpp"
#include "spindle/spindle.hpp"

namespace {

using io_test::expect_errno;
namespace sfs = std::filesystem;

std::set<std::string> names_in(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& e : spindle::list_directory(dir)) names.insert(e.name);
  return names;
}

TEST(Stat, FilesDirectoriesLinks) {
  spindle::run([] {
    io_test::TempDir dir;
    spindle::write_file(dir / "f", "12345", {.mode = 0640});
    spindle::FileInfo f = spindle::stat(dir / "f");
    EXPECT_TRUE(f.is_regular());
    EXPECT_EQ(f.size, 5u);
    EXPECT_EQ(f.mode & ~0640u, 0u);  // 0640 less the umask
    EXPECT_EQ(f.uid, ::getuid());
    EXPECT_EQ(f.links, 1u);
    auto age = std::chrono::system_clock::now() - f.modified;
    EXPECT_LT(age, std::chrono::minutes(5));
    EXPECT_TRUE(spindle::stat(dir.path()).is_directory());
    ASSERT_EQ(::symlink((dir / "f").c_str(), (dir / "link").c_str()), 0);
    EXPECT_TRUE(spindle::stat(dir / "link").is_regular());
    EXPECT_TRUE(spindle::symlink_status(dir / "link").is_symlink());
    ASSERT_EQ(::symlink((dir / "nowhere").c_str(), (dir / "dangling").c_str()), 0);
    EXPECT_TRUE(spindle::exists(dir / "f"));
    EXPECT_FALSE(spindle::exists(dir / "dangling"));
    EXPECT_FALSE(spindle::exists(dir / "f/below-a-file"));  // ENOTDIR: no
    expect_errno(
        ENOENT, [&] { spindle::stat(dir / "missing"); }, "stat " + (dir / "missing"));
  });
}

TEST(Directories, CreateDirectoriesLikeMkdirP) {
  spindle::run([] {
    io_test::TempDir dir;
    EXPECT_TRUE(spindle::create_directories(dir / "a/b/c/d"));
    EXPECT_TRUE(spindle::stat(dir / "a/b/c/d").is_directory());
    EXPECT_FALSE(spindle::create_directories(dir / "a/b/c/d"));
    EXPECT_FALSE(spindle::create_directories(dir / "a/b/"));
    EXPECT_TRUE(spindle::create_directories(dir / "a/b/e/"));
    EXPECT_TRUE(spindle::create_directory(dir / "x"));
    EXPECT_FALSE(spindle::create_directory(dir / "x"));
    spindle::write_file(dir / "file", "");
    expect_errno(
        EEXIST, [&] { spindle::create_directories(dir / "file"); }, "create_directories");
    expect_errno(
        ENOTDIR, [&] { spindle::create_directories(dir / "file/sub/dir"); }, "create_directories");
    expect_errno(
        ENOENT, [&] { spindle::create_directory(dir / "none/sub"); }, "create_directory");
  });
}

TEST(Directories, ListAndStopEarly) {
  spindle::run([] {
    io_test::TempDir dir;
    spindle::create_directory(dir / "sub");
    spindle::write_file(dir / "one", "1");
    spindle::write_file(dir / "two", "2");
    auto entries = spindle::list_directory(dir.path());
    std::sort(entries.begin(), entries.end(),
              [](const auto& a, const auto& b) { return a.name < b.name; });
    ASSERT_EQ(entries.size(), 3u);
    EXPECT_EQ(entries[0].name, "one");
    EXPECT_EQ(entries[1].name, "sub");
    EXPECT_EQ(entries[2].name, "two");
    using sfs::file_type;
    // Types come from the directory (or unknown on file systems without them).
    EXPECT_TRUE(entries[1].type == file_type::directory || entries[1].type == file_type::unknown);
    EXPECT_TRUE(entries[0].type == file_type::regular || entries[0].type == file_type::unknown);
    std::size_t n =
        spindle::for_each_entry(dir.path(), [](const spindle::DirEntry&) { return false; });
    EXPECT_EQ(n, 1u);
    expect_errno(
        EMSGSIZE, [&] { spindle::list_directory(dir.path(), 2); }, "list_directory");
    expect_errno(
        ENOENT, [&] { spindle::list_directory(dir / "missing"); },
        "list_directory " + (dir / "missing"));
    expect_errno(
        ENOTDIR, [&] { spindle::list_directory(dir / "one"); }, "list_directory");
    EXPECT_TRUE(spindle::list_directory(dir / "sub").empty());
  });
}

TEST(Directories, ManyEntriesTakeSeveralBatches) {
  spindle::run([] {
    io_test::TempDir dir;
    constexpr int kFiles = 3000;  // names of ~40 bytes: several 32 KiB batches
    for (int i = 0; i < kFiles; ++i) {
      std::string name = dir / "a-rather-long-file-name-number-";
      name += std::to_string(i);
      spindle::File::create(name);
    }
    std::set<std::string> names = names_in(dir.path());
    EXPECT_EQ(names.size(), static_cast<std::size_t>(kFiles));
    EXPECT_EQ(spindle::remove_all(dir.path()), kFiles + 1u);
    EXPECT_FALSE(spindle::exists(dir.path()));
  });
}

TEST(Directories, RemoveAndRemoveAll) {
  spindle::run([] {
    io_test::TempDir dir;
    spindle::write_file(dir / "f", "x");
    EXPECT_TRUE(spindle::remove(dir / "f"));
    EXPECT_FALSE(spindle::remove(dir / "f"));
    spindle::create_directory(dir / "empty");
    EXPECT_TRUE(spindle::remove(dir / "empty"));
    spindle::create_directories(dir / "full/inner");
    expect_errno(
        ENOTEMPTY, [&] { spindle::remove(dir / "full"); }, "remove " + (dir / "full"));

    // A deep tree, with a symbolic link out of it that must not be followed.
    spindle::create_directory(dir / "outside");
    spindle::write_file(dir / "outside/precious", "keep me");
    std::string deep = dir / "tree";
    for (int i = 0; i < 150; ++i) deep += "/d";
    spindle::create_directories(deep);
    spindle::write_file(deep + "/leaf", "leaf");
    spindle::write_file(dir / "tree/top", "top");
    ASSERT_EQ(::symlink((dir / "outside").c_str(), (dir / "tree/link").c_str()), 0);
    EXPECT_EQ(spindle::remove_all(dir / "tree"), 1u + 150u + 1u + 1u + 1u);
    EXPECT_FALSE(spindle::exists(dir / "tree"));
    EXPECT_EQ(spindle::read_file(dir / "outside/precious"), "keep me");
    EXPECT_EQ(spindle::remove_all(dir / "tree"), 0u);
    EXPECT_EQ(spindle::remove_all(dir / "outside/precious"), 1u);
  });
}

TEST(Paths, Rename) {
  spindle::run([] {
    io_test::TempDir dir;
    spindle::write_file(dir / "a", "A");
    spindle::write_file(dir / "b", "B");
    spindle::rename(dir / "a", dir / "b");
    EXPECT_EQ(spindle::read_file(dir / "b"), "A");
    EXPECT_FALSE(spindle::exists(dir / "a"));
    expect_errno(
        ENOENT, [&] { spindle::rename(dir / "a", dir / "c"); },
        "rename " + (dir / "a") + " to " + (dir / "c"));
  });
}

}  // namespace
