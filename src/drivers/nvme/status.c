/* SPDX-License-Identifier: BSD-3-Clause */
/* Names of NVMe status codes (NVMe 1.4, 4.6.1.2, Figures 126-131), for messages. */
#include "drivers/nvme/nvme_internal.h"

struct name {
	uint16_t code; /* SCT << 8 | SC */
	const char *str;
};

static const struct name names[] = {
    {0x000, "Successful Completion"},
    {0x001, "Invalid Command Opcode"},
    {0x002, "Invalid Field in Command"},
    {0x003, "Command ID Conflict"},
    {0x004, "Data Transfer Error"},
    {0x005, "Commands Aborted due to Power Loss Notification"},
    {0x006, "Internal Error"},
    {0x007, "Command Abort Requested"},
    {0x008, "Command Aborted due to SQ Deletion"},
    {0x00b, "Invalid Namespace or Format"},
    {0x00c, "Command Sequence Error"},
    {0x00d, "Invalid SGL Segment Descriptor"},
    {0x00e, "Invalid Number of SGL Descriptors"},
    {0x00f, "Data SGL Length Invalid"},
    {0x011, "SGL Descriptor Type Invalid"},
    {0x013, "PRP Offset Invalid"},
    {0x080, "LBA Out of Range"},
    {0x081, "Capacity Exceeded"},
    {0x082, "Namespace Not Ready"},
    {0x100, "Completion Queue Invalid"},
    {0x101, "Invalid Queue Identifier"},
    {0x102, "Invalid Queue Size"},
    {0x103, "Abort Command Limit Exceeded"},
    {0x105, "Asynchronous Event Request Limit Exceeded"},
    {0x108, "Invalid Interrupt Vector"},
    {0x109, "Invalid Log Page"},
    {0x10c, "Invalid Queue Deletion"},
    {0x10d, "Feature Identifier Not Saveable"},
    {0x280, "Write Fault"},
    {0x281, "Unrecovered Read Error"},
    {0x285, "Compare Failure"},
    {0x286, "Access Denied"},
};

const char *udrv_nvme_status_str(uint16_t status)
{
	uint16_t code = status & 0x7ff;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].code == code)
			return names[i].str;
	return (code >> 8) == 7 ? "Vendor Specific" : "Unknown Status";
}
