#!/usr/bin/perl
# Prints Sisimai's verdict on each message file, one line per recipient:
#   FILE <TAB> reason <TAB> status <TAB> action
# ("-" fields for a file Sisimai reports nothing on). With --rounds N the
# files are classified N times and only the last round is printed, so the
# interpreter's start-up is paid once, as mailcanary's is.
# Used by bench/bounce-compare.sh; needs Debian's libsisimai-perl.
use strict;
use warnings;
use Sisimai;

my $rounds = 1;
if (@ARGV && $ARGV[0] eq '--rounds') { shift; $rounds = shift; }
my @out;
for my $r (1 .. $rounds) {
    @out = ();
    for my $f (@ARGV) {
        my $v = eval { Sisimai->make($f, 'delivered' => 1) } // [];
        if (!@$v) { push @out, join("\t", $f, '-', '-', '-'); next }
        for my $e (@$v) {
            push @out, join("\t", $f, $e->reason || '-', $e->deliverystatus || '-', $e->action || '-');
        }
    }
}
print "$_\n" for @out;
