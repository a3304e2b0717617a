/*
 * A stand-in Webots that is ready at once, for the benchmark: the Deno stand-in in tests/fakes
 * needs ~25 ms just to start its runtime, which would hide the server's own start-up cost.
 * It honours the real command line: binds the port of --stream="port=P;...", writes the same
 * record as the Deno stand-in when FAKE_WEBOTS_RECORD_DIR is set, prints "open", and waits.
 * SIGTERM ends it (default action). Built by bench/simulation.ts with `cc -O2`.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') fputc('\\', f);
    if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", *s);
    else fputc(*s, f);
  }
  fputc('"', f);
}

int main(int argc, char **argv) {
  int port = 0;
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], "--stream=", 9) == 0) {
      const char *p = strstr(argv[i], "port=");
      if (p) port = atoi(p + 5);
    }
  }
  int s = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {0};
  addr.sin_family = AF_INET;
  addr.sin_port = htons((unsigned short)port);
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  if (port == 0 || bind(s, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(s, 16) != 0) {
    fprintf(stderr, "fast webots: cannot listen on port %d\n", port);
    return 1;
  }
  const char *dir = getenv("FAKE_WEBOTS_RECORD_DIR");
  if (dir) {
    char tmp[4096], final[4096];
    snprintf(tmp, sizeof tmp, "%s/%d.json.tmp", dir, (int)getpid());
    snprintf(final, sizeof final, "%s/%d.json", dir, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (f) {
      fprintf(f, "{\"pid\":%d,\"args\":[", (int)getpid());
      for (int i = 1; i < argc; i++) {
        if (i > 1) fputc(',', f);
        json_string(f, argv[i]);
      }
      fprintf(f, "],\"env\":{},\"childPids\":[]}");
      fclose(f);
      rename(tmp, final);
    }
  }
  printf("open\n");
  fflush(stdout);
  for (;;) pause();
}
