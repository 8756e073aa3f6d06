/*
 * gittrigger's emissary: runs a main container's command inside a user's image and saves
 * what the outputs need into the shared volume (see docs/kubernetes-pods.md).
 *
 * Copied into /var/run/gittrigger/emissary by `gittrigger pod-init`; podspec.py makes it every
 * main container's command: `emissary -- COMMAND ARGS...`. It must work in images with no
 * shell and no libc of their own, hence static C with no dependencies. It:
 *   - runs COMMAND (PATH lookup, stdin from /dev/null) and exits with its exit code, or
 *     128+signal when it was killed; a command that cannot be found exits 127 (126: not
 *     executable), with the runtime's message on stderr;
 *   - passes stdout and stderr through (the pod log has them) and also writes stdout to
 *     $RUN_DIR/<container>.stdout (the `result`);
 *   - forwards SIGTERM, SIGINT, SIGHUP and SIGQUIT to the command;
 *   - after the command exits, copies each `<index>=<path>` of GITTRIGGER_OUTPUTS (`:`-separated;
 *     `%3A` is `:` and `%25` is `%` inside a path) to $RUN_DIR/outputs/<index>: files,
 *     directories recursively, symlinks as links; a missing path is skipped. Copies are made
 *     readable by all, because the `wait` container may run as another user;
 *   - writes the exit code to $RUN_DIR/<container>.exitcode last (temporary file + rename), so
 *     `gittrigger pod-wait` seeing it means the outputs are complete.
 * RUN_DIR is $GITTRIGGER_RUN_DIR, default /var/run/gittrigger; <container> is
 * $GITTRIGGER_CONTAINER, default "main".
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEFAULT_RUN_DIR "/var/run/gittrigger"

static volatile sig_atomic_t child_pid = 0;
static const char *run_dir = DEFAULT_RUN_DIR;
static const char *container = "main";

static void forward(int sig) {
    if (child_pid > 0) kill((pid_t)child_pid, sig);
}

static void warn(const char *what, const char *path) {
    fprintf(stderr, "emissary: %s %s: %s\n", what, path, strerror(errno));
}

/* Write all of buf to fd, retrying short writes and EINTR; -1 on error. */
static int write_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int join(char *out, size_t size, const char *a, const char *b) {
    int n = snprintf(out, size, "%s/%s", a, b);
    if (n < 0 || (size_t)n >= size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/* Remove path recursively (files, links, directories); missing is fine. */
static void remove_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d != NULL) {
            struct dirent *e;
            char child[PATH_MAX];
            while ((e = readdir(d)) != NULL) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
                if (join(child, sizeof child, path, e->d_name) == 0) remove_tree(child);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

static int copy_file(const char *src, const char *dst, mode_t mode) {
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return -1;
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0) {
        int saved = errno;
        close(in);
        errno = saved;
        return -1;
    }
    char buf[65536];
    int rc = 0;
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 || (n > 0 && write_all(out, buf, (size_t)n) != 0)) {
            rc = -1;
            break;
        }
        if (n == 0) break;
    }
    int saved = errno;
    if (fchmod(out, (mode & 07777) | 0444) != 0 && rc == 0) rc = -1, saved = errno;
    if (close(out) != 0 && rc == 0) rc = -1, saved = errno;
    close(in);
    errno = saved;
    return rc;
}

/* Copy src to dst (which must not exist): files, directories recursively, symlinks as links.
   Other kinds (sockets, fifos, devices) are skipped. Returns the number of failures. */
static int copy_tree(const char *src, const char *dst) {
    struct stat st;
    if (lstat(src, &st) != 0) {
        warn("cannot read", src);
        return 1;
    }
    if (S_ISLNK(st.st_mode)) {
        char target[PATH_MAX];
        ssize_t n = readlink(src, target, sizeof target - 1);
        if (n < 0) {
            warn("cannot read link", src);
            return 1;
        }
        target[n] = '\0';
        if (symlink(target, dst) != 0) {
            warn("cannot create link", dst);
            return 1;
        }
        return 0;
    }
    if (S_ISREG(st.st_mode)) {
        if (copy_file(src, dst, st.st_mode) != 0) {
            warn("cannot copy", src);
            return 1;
        }
        return 0;
    }
    if (!S_ISDIR(st.st_mode)) return 0;
    if (mkdir(dst, 0700) != 0) {
        warn("cannot create directory", dst);
        return 1;
    }
    int failures = 0;
    DIR *d = opendir(src);
    if (d == NULL) {
        warn("cannot list", src);
        failures++;
    } else {
        struct dirent *e;
        char from[PATH_MAX], to[PATH_MAX];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            if (join(from, sizeof from, src, e->d_name) != 0 || join(to, sizeof to, dst, e->d_name) != 0) {
                warn("path too long under", src);
                failures++;
                continue;
            }
            failures += copy_tree(from, to);
        }
        closedir(d);
    }
    if (chmod(dst, (st.st_mode & 07777) | 0555) != 0) {
        warn("cannot set mode of", dst);
        failures++;
    }
    return failures;
}

/* Decode %3A -> ':' and %25 -> '%' in place (the escaping of podplan.outputs_env). */
static void unescape(char *s) {
    char *w = s;
    for (char *r = s; *r != '\0'; w++) {
        if (r[0] == '%' && r[1] == '3' && r[2] == 'A') {
            *w = ':';
            r += 3;
        } else if (r[0] == '%' && r[1] == '2' && r[2] == '5') {
            *w = '%';
            r += 3;
        } else {
            *w = *r++;
        }
    }
    *w = '\0';
}

static void save_outputs(void) {
    const char *spec = getenv("GITTRIGGER_OUTPUTS");
    if (spec == NULL || *spec == '\0') return;
    char outputs[PATH_MAX];
    if (join(outputs, sizeof outputs, run_dir, "outputs") != 0) {
        warn("path too long:", run_dir);
        return;
    }
    if (mkdir(outputs, 0777) != 0 && errno != EEXIST) {
        warn("cannot create directory", outputs);
        return;
    }
    chmod(outputs, 0777); /* containers of one pod may run as different users */
    char *copy = strdup(spec);
    if (copy == NULL) return;
    char *save = NULL;
    for (char *item = strtok_r(copy, ":", &save); item != NULL; item = strtok_r(NULL, ":", &save)) {
        char *eq = strchr(item, '=');
        if (eq == NULL || eq == item) {
            fprintf(stderr, "emissary: ignoring malformed GITTRIGGER_OUTPUTS item %s\n", item);
            continue;
        }
        *eq = '\0';
        char *path = eq + 1;
        unescape(path);
        struct stat st;
        if (lstat(path, &st) != 0) continue; /* not produced: pod-wait decides if that is an error */
        char tmp[PATH_MAX], name[NAME_MAX + 1], dest[PATH_MAX];
        snprintf(name, sizeof name, ".%s.%s.%ld.tmp", item, container, (long)getpid());
        if (join(tmp, sizeof tmp, outputs, name) != 0 || join(dest, sizeof dest, outputs, item) != 0) {
            warn("path too long under", outputs);
            continue;
        }
        remove_tree(tmp);
        if (copy_tree(path, tmp) != 0) {
            fprintf(stderr, "emissary: output %s (%s) was not saved\n", item, path);
            remove_tree(tmp);
            continue;
        }
        remove_tree(dest); /* a containerSet's later container wins */
        if (rename(tmp, dest) != 0) {
            warn("cannot move output to", dest);
            remove_tree(tmp);
        }
    }
    free(copy);
}

static void write_exit_code(int code) {
    char final[PATH_MAX], tmp[PATH_MAX], name[NAME_MAX + 1], text[16];
    snprintf(name, sizeof name, "%s.exitcode", container);
    if (join(final, sizeof final, run_dir, name) != 0) return;
    snprintf(name, sizeof name, ".%s.exitcode.tmp", container);
    if (join(tmp, sizeof tmp, run_dir, name) != 0) return;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int n = snprintf(text, sizeof text, "%d\n", code);
    if (fd < 0 || write_all(fd, text, (size_t)n) != 0 || fchmod(fd, 0644) != 0 || close(fd) != 0 ||
        rename(tmp, final) != 0) {
        warn("cannot write", final);
    }
}

/* Copy what the child writes to our stdout and the .stdout file, until it exits. */
static int pump(int from, int tee, pid_t pid) {
    char buf[65536];
    int status = 0;
    int exited = 0, open_pipe = 1;
    while (!exited || open_pipe) {
        if (!exited) {
            pid_t got = waitpid(pid, &status, WNOHANG);
            if (got == pid) {
                exited = 1;
                /* Drain what is buffered, but do not wait for background processes that
                   inherited the pipe: the command is over. */
                fcntl(from, F_SETFL, fcntl(from, F_GETFL) | O_NONBLOCK);
            }
        }
        if (!open_pipe) {
            if (waitpid(pid, &status, 0) == pid) exited = 1; /* EINTR: forwarded a signal, retry */
            continue;
        }
        struct pollfd p = {.fd = from, .events = POLLIN};
        if (!exited && poll(&p, 1, 100) <= 0) continue;
        ssize_t n = read(from, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) { /* EOF, or nothing left to drain after the exit */
            open_pipe = 0;
            continue;
        }
        if (write_all(STDOUT_FILENO, buf, (size_t)n) != 0 && errno != EPIPE) warn("cannot write", "stdout");
        if (tee >= 0 && write_all(tee, buf, (size_t)n) != 0) {
            warn("cannot write", "the stdout file");
            close(tee);
            tee = -1;
        }
    }
    if (tee >= 0) close(tee);
    close(from);
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return 1;
}

/* execvp without glibc's fallback of running a non-executable file with /bin/sh: a container
   runtime reports "exec format error" there, so must we. Returns only on failure (errno set). */
static void exec_path(const char *file, char *const argv[]) {
    if (strchr(file, '/') != NULL) {
        execv(file, argv);
        return;
    }
    const char *search = getenv("PATH");
    if (search == NULL || *search == '\0') search = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    int denied = 0;
    char candidate[PATH_MAX];
    for (const char *dir = search;; dir++) {
        const char *end = strchrnul(dir, ':');
        int n = snprintf(candidate, sizeof candidate, "%.*s/%s", (int)(end - dir), end == dir ? "." : dir, file);
        if (n > 0 && (size_t)n < sizeof candidate) {
            execv(candidate, argv);
            if (errno == EACCES) denied = 1;
            else if (errno != ENOENT && errno != ENOTDIR) return;
        }
        if (*end == '\0') break;
        dir = end;
    }
    errno = denied ? EACCES : ENOENT;
}

int main(int argc, char **argv) {
    const char *env = getenv("GITTRIGGER_RUN_DIR");
    if (env != NULL && *env != '\0') run_dir = env;
    env = getenv("GITTRIGGER_CONTAINER");
    if (env != NULL && *env != '\0') container = env;
    int first = 1;
    if (argc > 1 && strcmp(argv[1], "--") == 0) first = 2;
    if (first >= argc) {
        fprintf(stderr, "usage: emissary -- COMMAND [ARG...]\n");
        write_exit_code(127);
        return 127;
    }

    char path[PATH_MAX], name[NAME_MAX + 1];
    snprintf(name, sizeof name, "%s.stdout", container);
    int tee = -1;
    if (join(path, sizeof path, run_dir, name) == 0) tee = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (tee < 0) warn("cannot open the stdout file in", run_dir);
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) {
        warn("cannot create", "a pipe");
        write_exit_code(126);
        return 126;
    }

    /* Signals are blocked across fork, so none arrives before child_pid is known. */
    static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};
    sigset_t block, old;
    sigemptyset(&block);
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) sigaddset(&block, forwarded[i]);
    sigprocmask(SIG_BLOCK, &block, &old);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward; /* no SA_RESTART: waitpid and poll return EINTR, which the loop handles */
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) sigaction(forwarded[i], &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    pid_t pid = fork();
    if (pid < 0) {
        warn("cannot start", argv[first]);
        write_exit_code(126);
        return 126;
    }
    if (pid == 0) {
        signal(SIGPIPE, SIG_DFL);
        for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) signal(forwarded[i], SIG_DFL);
        sigprocmask(SIG_SETMASK, &old, NULL);
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0) {
            dup2(null, STDIN_FILENO);
            if (null != STDIN_FILENO) close(null);
        }
        dup2(out[1], STDOUT_FILENO); /* dup2 clears O_CLOEXEC on the copy */
        exec_path(argv[first], &argv[first]);
        int code = (errno == ENOENT || errno == ENOTDIR) ? 127 : 126;
        if (errno == ENOENT && strchr(argv[first], '/') == NULL) {
            fprintf(stderr, "exec: \"%s\": executable file not found in $PATH\n", argv[first]);
        } else {
            fprintf(stderr, "exec: \"%s\": %s\n", argv[first], strerror(errno));
        }
        _exit(code);
    }
    child_pid = pid;
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(out[1]);

    int code = pump(out[0], tee, pid);
    save_outputs();
    write_exit_code(code);
    return code;
}
