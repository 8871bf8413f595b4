//! The kernel log as `dmesg` prints it: firewall/audit noise, full OOM-killer reports and
//! segfaults of the FPM children that died.

use super::Sim;
use crate::site::OTHER_PROCS;
use crate::text::push_u64_pad;
use crate::writer::LogWriter;

impl Sim {
    pub(crate) fn kern_line(&mut self) -> &mut LogWriter {
        let rel = self.t_us - self.boot_us;
        self.kern
            .s("[")
            .n(rel / 1_000_000)
            .s(".")
            .nz(rel % 1_000_000, 6)
            .s("] ");
        &mut self.kern
    }

    pub(crate) fn kern_noise(&mut self) {
        match self.rng.weighted(&[60, 12, 6, 4, 3, 2]) {
            0 => {
                let (a, b, c) = (
                    self.rng.range(1, 223),
                    self.rng.below(256),
                    self.rng.below(256),
                );
                let d = self.rng.range(1, 254);
                let dpt = *self
                    .rng
                    .pick(&[22u64, 23, 3389, 8080, 5432, 6379, 445, 1433]);
                let (spt, id, ttl) = (
                    self.rng.range(1024, 65535),
                    self.rng.below(65536),
                    self.rng.range(40, 250),
                );
                let mac = self.rng.next();
                self.kern_line()
                    .s("[UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:")
                    .hex(mac & 0xff, 2)
                    .s(":")
                    .hex((mac >> 8) & 0xff, 2)
                    .s(":")
                    .hex((mac >> 16) & 0xff, 2)
                    .s(":00:00:00:08:00 SRC=")
                    .n(a)
                    .s(".")
                    .n(b)
                    .s(".")
                    .n(c)
                    .s(".")
                    .n(d)
                    .s(" DST=10.0.0.5 LEN=44 TOS=0x00 PREC=0x00 TTL=")
                    .n(ttl)
                    .s(" ID=")
                    .n(id)
                    .s(" PROTO=TCP SPT=")
                    .n(spt)
                    .s(" DPT=")
                    .n(dpt)
                    .s(" WINDOW=1024 RES=0x00 SYN URGP=0 ")
                    .nl();
            }
            1 => {
                let serial = self.rng.range(100, 999_999);
                let pid = self.rng.range(300, 30_000);
                let sec = self.t_us / 1_000_000;
                let ms = self.t_us / 1000 % 1000;
                self.kern_line()
                    .s("audit: type=1400 audit(")
                    .n(sec)
                    .s(".")
                    .nz(ms, 3)
                    .s(":")
                    .n(serial)
                    .s("): apparmor=\"DENIED\" operation=\"open\" class=\"file\" profile=\"/usr/sbin/mariadbd\" name=\"/proc/")
                    .n(pid)
                    .s("/status\" pid=")
                    .n(pid)
                    .s(" comm=\"mariadbd\" requested_mask=\"r\" denied_mask=\"r\" fsuid=106 ouid=106")
                    .nl();
            }
            2 => {
                self.kern_line().s("TCP: request_sock_TCP: Possible SYN flooding on port 443. Sending cookies.  Check SNMP counters.").nl();
            }
            3 => {
                self.kern_line()
                    .s("nf_conntrack: nf_conntrack: table full, dropping packet")
                    .nl();
            }
            4 => {
                self.kern_line().s("EXT4-fs (vda1): warning: mounting fs with errors, running e2fsck is recommended").nl();
            }
            _ => {
                let n = self.rng.range(2, 40);
                self.kern_line()
                    .s("show_signal_msg: ")
                    .n(n)
                    .s(" callbacks suppressed")
                    .nl();
            }
        }
    }

    /// The kernel's full OOM report (6.1 layout) killing `victim`.
    pub(crate) fn kern_oom(&mut self, victim: u64) {
        let invoker = self.some_child();
        let cpu = self.rng.below(2);
        fn l(s: &mut Sim) -> &mut LogWriter {
            s.kern_line()
        }
        l(self).s("php-fpm8.2 invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0, oom_score_adj=0").nl();
        l(self)
            .s("CPU: ")
            .n(cpu)
            .s(" PID: ")
            .n(invoker)
            .s(" Comm: php-fpm8.2 Not tainted 6.1.0-31-amd64 #1  Debian 6.1.128-1")
            .nl();
        l(self).s("Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014").nl();
        l(self).s("Call Trace:").nl();
        l(self).s(" <TASK>").nl();
        for f in [
            "dump_stack_lvl+0x44/0x5c",
            "dump_header+0x4a/0x211",
            "oom_kill_process.cold+0xb/0x10",
            "out_of_memory+0x1fd/0x4e0",
            "__alloc_pages_slowpath.constprop.0+0xc7a/0xe20",
            "__alloc_pages+0x305/0x330",
            "folio_alloc+0x17/0x50",
            "__filemap_get_folio+0x155/0x340",
            "filemap_fault+0x139/0x910",
            "__do_fault+0x30/0x110",
            "do_fault+0x1b9/0x410",
            "__handle_mm_fault+0x660/0xfa0",
            "handle_mm_fault+0xdb/0x2d0",
            "do_user_addr_fault+0x191/0x550",
            "exc_page_fault+0x70/0x170",
            "asm_exc_page_fault+0x22/0x30",
        ] {
            l(self).s(" ").s(f).nl();
        }
        l(self).s(" </TASK>").nl();
        l(self).s("Mem-Info:").nl();
        let free = self.rng.range(20_000, 24_000);
        let inactive = self.rng.range(900_000, 980_000);
        l(self)
            .s("active_anon:1783 inactive_anon:")
            .n(inactive)
            .s(" isolated_anon:0 active_file:120 inactive_file:93 isolated_file:0 unevictable:0 dirty:0 writeback:0 slab_reclaimable:9182 slab_unreclaimable:14421 mapped:5120 shmem:2210 pagetables:6012 sec_pagetables:0 bounce:0 kernel_misc_reclaimable:0 free:")
            .n(free)
            .s(" free_pcp:61 free_cma:0")
            .nl();
        l(self).s("Node 0 active_anon:7132kB inactive_anon:3821532kB active_file:480kB inactive_file:372kB unevictable:0kB isolated(anon):0kB isolated(file):0kB mapped:20480kB dirty:0kB writeback:0kB shmem:8840kB shmem_thp: 0kB shmem_pmdmapped: 0kB anon_thp: 0kB writeback_tmp:0kB kernel_stack:3312kB pagetables:24048kB sec_pagetables:0kB all_unreclaimable? yes").nl();
        l(self).s("Node 0 DMA free:14336kB boost:0kB min:132kB low:164kB high:196kB reserved_highatomic:0KB active_anon:0kB inactive_anon:0kB active_file:0kB inactive_file:0kB unevictable:0kB writepending:0kB present:15992kB managed:15360kB mlocked:0kB bounce:0kB free_pcp:0kB local_pcp:0kB free_cma:0kB").nl();
        l(self).s("lowmem_reserve[]: 0 2947 3892 3892 3892").nl();
        l(self).s("Node 0 DMA32 free:54324kB boost:0kB min:25220kB low:31524kB high:37828kB reserved_highatomic:0KB active_anon:4184kB inactive_anon:2949880kB active_file:140kB inactive_file:112kB unevictable:0kB writepending:0kB present:3129196kB managed:3063660kB mlocked:0kB bounce:0kB free_pcp:120kB local_pcp:0kB free_cma:0kB").nl();
        l(self).s("Free swap  = 0kB").nl();
        l(self).s("Total swap = 0kB").nl();
        l(self).s("1048446 pages RAM").nl();
        l(self).s("Tasks state (memory values in pages):").nl();
        l(self).s("[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name").nl();
        for &(name, pid) in OTHER_PROCS {
            let (vm, rss) = (self.rng.range(2_000, 400_000), self.rng.range(200, 60_000));
            let pt = self.rng.range(40, 900) * 1024;
            let adj = if name == "systemd-journal" {
                -250i64
            } else {
                0
            };
            l(self).s("[");
            push_u64_pad(&mut self.kern.buf, pid, 7, b' ');
            self.kern.s("] ");
            push_u64_pad(&mut self.kern.buf, 0, 5, b' ');
            self.kern.s(" ");
            push_u64_pad(&mut self.kern.buf, pid, 5, b' ');
            self.kern.s(" ");
            push_u64_pad(&mut self.kern.buf, vm, 8, b' ');
            self.kern.s(" ");
            push_u64_pad(&mut self.kern.buf, rss, 8, b' ');
            self.kern.s(" ");
            push_u64_pad(&mut self.kern.buf, pt, 8, b' ');
            self.kern.s("        0         ");
            if adj < 0 {
                self.kern.s(" -250");
            } else {
                self.kern.s("    0");
            }
            self.kern.s(" ").s(name).nl();
        }
        let pids: Vec<u64> = self.children.iter().map(|c| c.pid).collect();
        for pid in pids {
            let rss = if pid == victim {
                self.rng.range(90_000, 110_000)
            } else {
                self.rng.range(8_000, 40_000)
            };
            l(self).s("[");
            push_u64_pad(&mut self.kern.buf, pid, 7, b' ');
            self.kern.s("]    33 ");
            push_u64_pad(&mut self.kern.buf, pid, 5, b' ');
            self.kern.s("   145386 ");
            push_u64_pad(&mut self.kern.buf, rss, 8, b' ');
            self.kern
                .s("   999424        0             0 php-fpm8.2")
                .nl();
        }
        l(self)
            .s("oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/system.slice/php8.2-fpm.service,task=php-fpm8.2,pid=")
            .n(victim)
            .s(",uid=33")
            .nl();
        let anon = self.rng.range(360_000, 440_000);
        l(self)
            .s("Out of memory: Killed process ")
            .n(victim)
            .s(" (php-fpm8.2) total-vm:581544kB, anon-rss:")
            .n(anon)
            .s("kB, file-rss:0kB, shmem-rss:12kB, UID:33 pgtables:976kB oom_score_adj:0")
            .nl();
        self.t_us += self.rng.range(5_000, 40_000);
        l(self)
            .s("oom_reaper: reaped process ")
            .n(victim)
            .s(" (php-fpm8.2), now anon-rss:0kB, file-rss:0kB, shmem-rss:12kB")
            .nl();
        self.oom_kills += 1;
    }

    pub(crate) fn kern_segfault(&mut self, victim: u64) {
        let ip = 0x7f3a_1c2b_0000 + self.rng.below(0xffff);
        let sp = 0x7ffd_4d9e_0000 + self.rng.below(0xffff);
        let at = *self.rng.pick(&[0u64, 8, 0x10, 0x18, 0x7f3a1c000000]);
        let cpu = self.rng.below(2);
        self.kern_line()
            .s("php-fpm8.2[")
            .n(victim)
            .s("]: segfault at ")
            .hex(at, if at > 0xffff { 12 } else { 1 })
            .s(" ip 0000")
            .hex(ip, 12)
            .s(" sp 0000")
            .hex(sp, 12)
            .s(" error 4 in opcache.so[7f3a1c280000+d2000] likely on CPU ")
            .n(cpu)
            .s(" (core ")
            .n(cpu)
            .s(", socket 0)")
            .nl();
        self.kern_line()
            .s("Code: 48 8b 47 08 48 85 c0 74 0b 48 8b 50 10 48 85 d2 <48> 8b 02 c3 0f 1f 44 00 00 31 c0 c3 66 2e 0f 1f 84 00 00 00 00 00 f3")
            .nl();
        self.segfaults += 1;
    }
}
