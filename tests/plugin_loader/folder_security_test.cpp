// Issue 13, plugin-folder hardening: what may lead the loader to code no check covered
// (symbolic links out of the folder, an ancestor others can rename entries of) and the
// cleanup of private copies when /tmp is shared by processes that cannot see each other.
#include <sys/file.h>

#include <gmock/gmock.h>

#include "loader_test_support.hpp"

namespace iotstream::test {
namespace {

using ::testing::HasSubstr;

TEST(PluginFolderSecurity, ALinkToAFileInsideTheFolderIsFollowed) {
    TempDir dir;
    install("good_rule", dir.path(), "good_rule.so.1.0");  // not *.so: never a candidate itself
    fs::create_symlink("good_rule.so.1.0", dir / "good_rule.so");
    PluginDirectory plugins(dir.path());
    EXPECT_TRUE(plugins.rejections().empty());
    ASSERT_NE(plugins.find("test_threshold"), nullptr);
}

TEST(PluginFolderSecurity, ALinkOutOfTheFolderIsRejectedBeforeAnyOfItsCodeRuns) {
    TempDir dir, elsewhere;
    const fs::path library = install("constructor_marker", elsewhere.path(), "marker.so");
    const fs::path marker = elsewhere / "constructor-ran";
    ::setenv("IOTS_FIXTURE_MARKER", marker.c_str(), 1);
    fs::create_symlink(library, dir / "innocent.so");
    const std::string reason = the_rejection(dir.path());
    ::unsetenv("IOTS_FIXTURE_MARKER");
    EXPECT_THAT(reason, HasSubstr((dir / "innocent.so").string()));
    EXPECT_THAT(reason, HasSubstr("a symbolic link to " + fs::canonical(library).string() +
                                  ", outside the plugin folder"));
    EXPECT_FALSE(fs::exists(marker)) << "the library's constructor ran before it was rejected";
}

TEST(PluginFolderSecurity, TheMarkerFixtureDoesRunItsConstructorWhenLoaded) {
    // The check above is only meaningful if the fixture leaves a mark when it does load.
    TempDir dir;
    install("constructor_marker", dir.path(), "marker.so");
    const fs::path marker = dir / "constructor-ran";
    ::setenv("IOTS_FIXTURE_MARKER", marker.c_str(), 1);
    PluginDirectory plugins(dir.path());
    ::unsetenv("IOTS_FIXTURE_MARKER");
    ASSERT_NE(plugins.find("test_marker"), nullptr);
    EXPECT_TRUE(fs::exists(marker));
}

TEST(PluginFolderSecurity, AnAncestorOthersMayWriteWithoutTheStickyBitRejectsTheFolder) {
    TempDir outer;
    const fs::path folder = outer / "plugins";
    fs::create_directory(folder);
    fs::permissions(folder, fs::perms(0755));
    install("good_rule", folder, "good_rule.so");

    fs::permissions(outer.path(), fs::perms(0777));
    const std::string reason = the_rejection(folder);
    EXPECT_THAT(reason, HasSubstr("the plugin folder's ancestor " + fs::canonical(outer.path()).string() +
                                  " is writable by others without the sticky bit (mode 0777)"));

    fs::permissions(outer.path(), fs::perms(01777));  // like /tmp: others cannot rename our entries
    PluginDirectory sticky(folder);
    EXPECT_TRUE(sticky.rejections().empty());
    EXPECT_NE(sticky.find("test_threshold"), nullptr);
}

TEST(PluginFolderSecurity, StaleCopiesAreThoseWhoseLockNobodyHoldsWhateverTheirPid) {
    TempDir tmp, plugins_dir;
    install("good_rule", plugins_dir.path(), "good_rule.so");
    // pid 1 is alive in every namespace: the old rule (remove when the pid is gone) kept both.
    const fs::path stale = tmp / "iotstream-plugins.1.AAAAAA";
    const fs::path live = tmp / "iotstream-plugins.1.BBBBBB";
    for (const fs::path &d : {stale, live}) {
        fs::create_directory(d);
        std::ofstream(d / ".lock").put('x');
        std::ofstream(d / "1-old_rule.so").put('x');
    }
    const int held = ::open((live / ".lock").c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(held, 0);
    ASSERT_EQ(::flock(held, LOCK_EX | LOCK_NB), 0);  // another "process" still using its copies

    const char *saved = std::getenv("TMPDIR");
    const std::string saved_tmpdir = saved ? saved : "";
    ::setenv("TMPDIR", tmp.path().c_str(), 1);
    {
        PluginDirectory plugins(plugins_dir.path());  // the first library loaded cleans up
        ASSERT_NE(plugins.find("test_threshold"), nullptr);
        EXPECT_FALSE(fs::exists(stale));
        EXPECT_TRUE(fs::exists(live / "1-old_rule.so"));
    }
    if (saved) ::setenv("TMPDIR", saved_tmpdir.c_str(), 1); else ::unsetenv("TMPDIR");
    ::close(held);
}

}  // namespace
}  // namespace iotstream::test
