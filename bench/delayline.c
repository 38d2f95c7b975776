// bench/delayline: a link delay for network-namespace hosts on a kernel without netem.
//
//   delayline DELAY_US PORT...        (run inside the switch namespace; see scripts/netns-hosts)
//
// A learning switch between veth ports, in place of the kernel bridge: every frame that comes in
// on a port leaves on the port its destination MAC was last seen on (all other ports when unknown
// or broadcast) DELAY_US microseconds later. The rate is left to tbf on the ports (the frame is
// sent through the port's qdisc). PACKET_VNET_HDR passes GSO super-frames and checksum offload
// through unchanged, so TCP keeps its 64 KB segments and the relay handles few frames. One thread,
// one FIFO (the delay is the same for every frame, so frames fall due in arrival order), poll()
// with a nanosecond timeout and 1 ns timer slack: it sleeps while nothing is due, so it costs the
// loaded 2-core machine little; its own time per frame is part of what bench/scaling's probe
// measures as the latency a.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PORTS 16
#define VNET_HDR 10
#define FRAME_MAX (65536 + VNET_HDR + 64)
#define QUEUE 16384          // frames waiting (a power of 2)
#define MACS 256

struct frame { uint64_t due; int port; int length; unsigned char *data; };
static struct frame queue[QUEUE];
static unsigned head, tail;  // tail - head frames waiting
static struct { unsigned char mac[6]; int port; } table[MACS];
static int macs;

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int open_port(const char *name) {
    int s = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(ETH_P_ALL));
    if (s < 0) { perror("delayline: socket"); exit(1); }
    int on = 1, size = 8 << 20;
    if (setsockopt(s, SOL_PACKET, PACKET_VNET_HDR, &on, sizeof on) < 0) { perror("delayline: PACKET_VNET_HDR"); exit(1); }
    setsockopt(s, SOL_PACKET, PACKET_IGNORE_OUTGOING, &on, sizeof on);
    setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
    setsockopt(s, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size);
    struct sockaddr_ll address = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = (int)if_nametoindex(name)};
    if (address.sll_ifindex == 0 || bind(s, (struct sockaddr *)&address, sizeof address) < 0) {
        fprintf(stderr, "delayline: %s: %s\n", name, strerror(errno));
        exit(1);
    }
    return s;
}

static int port_of(const unsigned char *mac) {
    for (int i = 0; i < macs; i++)
        if (memcmp(table[i].mac, mac, 6) == 0) return table[i].port;
    return -1;
}

static void learn(const unsigned char *mac, int port) {
    for (int i = 0; i < macs; i++)
        if (memcmp(table[i].mac, mac, 6) == 0) { table[i].port = port; return; }
    if (macs < MACS) { memcpy(table[macs].mac, mac, 6); table[macs++].port = port; }
}

static void enqueue(uint64_t due, int port, const unsigned char *data, int length) {
    if (tail - head == QUEUE) {  // full: dropped, as a switch would
        static unsigned long full;
        if ((++full & (full - 1)) == 0) fprintf(stderr, "delayline: %lu dropped, queue full\n", full);
        return;
    }
    struct frame *f = &queue[tail++ % QUEUE];
    f->data = malloc((size_t)length);
    if (!f->data) { tail--; return; }
    memcpy(f->data, data, (size_t)length);
    f->due = due, f->port = port, f->length = length;
}

int main(int argc, char **argv) {
    if (argc < 3 || argc - 2 > MAX_PORTS) {
        fprintf(stderr, "usage: delayline DELAY_US PORT... (at most %d ports)\n", MAX_PORTS);
        return 2;
    }
    uint64_t delay = (uint64_t)(atof(argv[1]) * 1000);
    int ports = argc - 2, socks[MAX_PORTS];
    for (int i = 0; i < ports; i++) socks[i] = open_port(argv[i + 2]);
    prctl(PR_SET_TIMERSLACK, 1UL);
    signal(SIGPIPE, SIG_IGN);
    static unsigned char buffer[FRAME_MAX];
    struct pollfd fds[MAX_PORTS];
    for (int i = 0; i < ports; i++) fds[i] = (struct pollfd){.fd = socks[i], .events = POLLIN};
    fprintf(stderr, "delayline: %d ports, %.1f us one way\n", ports, delay / 1e3);
    for (;;) {
        struct timespec wait, *timeout = NULL;
        if (tail != head) {
            uint64_t t = now_ns(), due = queue[head % QUEUE].due;
            uint64_t left = due > t ? due - t : 0;
            wait = (struct timespec){.tv_sec = (time_t)(left / 1000000000u), .tv_nsec = (long)(left % 1000000000u)};
            timeout = &wait;
        }
        if (ppoll(fds, (nfds_t)ports, timeout, NULL) < 0 && errno != EINTR) { perror("delayline: ppoll"); return 1; }
        for (int i = 0; i < ports; i++) {
            if (!(fds[i].revents & POLLIN)) continue;
            for (;;) {
                ssize_t n = recv(socks[i], buffer, sizeof buffer, 0);
                if (n < 0) break;
                if (n < VNET_HDR + 14) continue;
                uint64_t due = now_ns() + delay;
                const unsigned char *eth = buffer + VNET_HDR;
                learn(eth + 6, i);
                int out = eth[0] & 1 ? -1 : port_of(eth);
                if (out == i) continue;
                if (out >= 0) enqueue(due, out, buffer, (int)n);
                else
                    for (int p = 0; p < ports; p++)
                        if (p != i) enqueue(due, p, buffer, (int)n);
            }
        }
        for (uint64_t t = now_ns(); tail != head && queue[head % QUEUE].due <= t; head++) {
            struct frame *f = &queue[head % QUEUE];
            // A full qdisc refuses the frame: dropped, as a switch port's full queue would.
            if (send(socks[f->port], f->data, (size_t)f->length, 0) < 0) {
                static unsigned long dropped;
                if ((++dropped & (dropped - 1)) == 0) fprintf(stderr, "delayline: %lu dropped (%s)\n", dropped, strerror(errno));
            }
            free(f->data);
        }
    }
}
