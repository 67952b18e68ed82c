/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Vendor, device and class names from the PCI ID database (pci.ids) through libpci. libpci is
 * used only here, only for names: sysfs gives everything else.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include "pci_internal.h"

#ifndef UDRV_HAVE_LIBPCI
/* Built without libpci (the static binaries of the VM tier): devices have no names. */
int pci_names_set_ids_path(const char *path)
{
	(void)path;
	return 0;
}

void pci_names_fill(struct udrv_pci_info *info)
{
	info->vendor_name[0] = info->device_name[0] = info->class_name[0] = '\0';
}
#else
#include <pci/pci.h>

static pthread_once_t names_once = PTHREAD_ONCE_INIT;
/* libpci's name cache is not thread-safe: every lookup holds this. */
static pthread_mutex_t names_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pci_access *pacc;
static const char *ids_path; /* tests: override libpci's default pci.ids */
static bool names_started;
/* libpci reports a malformed pci.ids through a->error(), which must not return. */
static jmp_buf names_jmp;
static bool names_broken;

static void PCI_PRINTF(1, 2) PCI_NONRET names_error(char *msg, ...)
{
	(void)msg;
	longjmp(names_jmp, 1);
}

static void PCI_PRINTF(1, 2) names_quiet(char *msg, ...)
{
	(void)msg;
}

static void names_init(void)
{
	pthread_mutex_lock(&names_lock);
	names_started = true;
	/* pci_alloc() only allocates; pci_init() would open the access method, unneeded here. */
	pacc = pci_alloc();
	if (pacc) {
		pacc->error = names_error;
		pacc->warning = names_quiet;
		pacc->debug = names_quiet;
		/* No DNS and no ~/.pciids-cache: names come from the local pci.ids only. */
		pacc->id_lookup_mode = 0;
		if (ids_path)
			pci_set_name_list_path(pacc, (char *)ids_path, 0);
	}
	pthread_mutex_unlock(&names_lock);
}

int pci_names_set_ids_path(const char *path)
{
	int ret = 0;

	pthread_mutex_lock(&names_lock);
	if (names_started)
		ret = -EBUSY;
	else
		ids_path = path;
	pthread_mutex_unlock(&names_lock);
	return ret;
}

/* Caller holds names_lock. va_list cannot cross setjmp portably, so one helper per shape. */
static void lookup(char *out, size_t len, int flags, int a, int b)
{
	char buf[256];
	/* volatile: the value must survive a longjmp out of libpci. */
	char *volatile name = NULL;

	out[0] = '\0';
	if (!pacc || names_broken)
		return;
	/* hwdb is udev's copy of the same data; skipping it keeps results identical everywhere. */
	flags |= PCI_LOOKUP_NO_NUMBERS | PCI_LOOKUP_NO_HWDB;
	if (setjmp(names_jmp) == 0) {
		name = pci_lookup_name(pacc, buf, sizeof(buf), flags, a, b);
	} else {
		/* A malformed pci.ids: names stay empty for the rest of the process. */
		names_broken = true;
		name = NULL;
	}
	if (name)
		snprintf(out, len, "%s", name);
}

void pci_names_fill(struct udrv_pci_info *info)
{
	pthread_once(&names_once, names_init);
	pthread_mutex_lock(&names_lock);
	lookup(info->vendor_name, sizeof(info->vendor_name), PCI_LOOKUP_VENDOR, info->vendor, 0);
	lookup(info->device_name, sizeof(info->device_name), PCI_LOOKUP_DEVICE, info->vendor,
	       info->device);
	/* pci.ids names classes by base class and subclass; the prog-if is a refinement. */
	lookup(info->class_name, sizeof(info->class_name), PCI_LOOKUP_CLASS,
	       (int)(info->class_code >> 8), 0);
	pthread_mutex_unlock(&names_lock);
}
#endif
