/*
 * Runs the PDF builder on one message file, for benchmarks and by hand:
 *
 *   pdf_build [-n RUNS] [-r REPLY_URL] [-w WARM_MESSAGE] MESSAGE OUT.pdf
 *       PASSWORD
 *
 * With -w, WARM_MESSAGE (a small one) is rendered first, so fontconfig
 * and pango have loaded their fonts (once per process) before MESSAGE is
 * measured. Prints one JSON line: the message size, the time of the first
 * and the best later run in ms, and the peak resident set size (VmHWM)
 * after the warm-up and at the end, in KiB: the growth a message causes
 * is end minus warm.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gmime/gmime.h>

#include "pdf.h"

static double
pdf_build_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static long
pdf_build_hwm(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "VmHWM:", 6) == 0)
			kb = strtol(line + 6, NULL, 10);
	fclose(f);
	return kb;
}

int
main(int argc, char **argv)
{
	struct pdf_opts o;
	struct pdf_info info;
	struct stat sb;
	char err[256];
	double t0, first = 0, best = 0;
	long warm = 0;
	int ch, runs = 1, fd;

	memset(&o, 0, sizeof(o));
	const char *warm_msg = NULL;

	while ((ch = getopt(argc, argv, "n:r:w:")) != -1) {
		switch (ch) {
		case 'n':
			runs = atoi(optarg);
			break;
		case 'r':
			o.reply_url = optarg;
			break;
		case 'w':
			warm_msg = optarg;
			break;
		default:
			goto usage;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 3 || runs < 1)
		goto usage;
	g_mime_init();
	o.password = argv[2];
	if ((fd = open(argv[0], O_RDONLY)) == -1 || fstat(fd, &sb) == -1) {
		perror(argv[0]);
		return 1;
	}
	if (warm_msg != NULL) {
		int wfd = open(warm_msg, O_RDONLY);

		if (wfd == -1 || pdf_build(wfd, &o, argv[1], &info, err,
		    sizeof(err)) == -1) {
			fprintf(stderr, "warm-up: %s\n", wfd == -1 ? warm_msg :
			    err);
			return 1;
		}
		close(wfd);
		warm = pdf_build_hwm();
	}
	for (int i = 0; i < runs; i++) {
		lseek(fd, 0, SEEK_SET);
		t0 = pdf_build_now();
		if (pdf_build(fd, &o, argv[1], &info, err, sizeof(err)) == -1) {
			fprintf(stderr, "pdf_build: %s\n", err);
			return 1;
		}
		t0 = pdf_build_now() - t0;
		if (i == 0) {
			first = t0;
			if (warm_msg == NULL)
				warm = pdf_build_hwm();
		} else if (best == 0 || t0 < best)
			best = t0;
	}
	printf("{\"size\": %lld, \"pages\": %d, \"attachments\": %d, "
	    "\"first_ms\": %.1f, \"best_ms\": %.1f, \"hwm_warm_kb\": %ld, "
	    "\"hwm_end_kb\": %ld}\n", (long long)sb.st_size, info.pages,
	    info.attachments, first, runs > 1 ? best : first, warm,
	    pdf_build_hwm());
	close(fd);
	return 0;
usage:
	fprintf(stderr, "usage: pdf_build [-n runs] [-r reply-url] message "
	    "out.pdf password\n");
	return 2;
}
